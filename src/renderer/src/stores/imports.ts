import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { ImportProgress, ImportReport, ImportSource } from '../../../shared/dto'
import { studio } from '../api/client'
import { useThrottleFn } from '@vueuse/core'
import { useDatasetsStore } from './datasets'
import { errorMessage } from '../util/format'

export type ImportTarget = { datasetId: number } | { newDatasetName: string }

export interface ActiveImport {
  importId: number
  datasetId: number
  source: ImportSource
  progress: ImportProgress
  report: ImportReport | null
  reportError: string | null
  cancelling: boolean
}

/**
 * Imports in flight and the report of the last one per dataset. Progress comes from
 * `import.progress` events, which may arrive before `imports.start` answers: they are kept
 * by import id until the start call says which one is ours.
 */
export const useImportsStore = defineStore('imports', () => {
  const datasets = useDatasetsStore()
  /** The last import per dataset id. */
  const byDataset = ref<Record<number, ActiveImport>>({})
  const early = new Map<number, ImportProgress>()

  const running = computed(() => Object.values(byDataset.value).filter((i) => i.progress.status === 'running'))

  const refreshWhileRunning = useThrottleFn((datasetId: number) => datasets.changed(datasetId), 1500, true, false)

  function isNewer(next: ImportProgress, prev: ImportProgress): boolean {
    if (prev.status !== 'running') return false
    return next.status !== 'running' || next.processed >= prev.processed
  }

  function apply(progress: ImportProgress): void {
    const active = Object.values(byDataset.value).find((i) => i.importId === progress.importId)
    if (!active) {
      const prev = early.get(progress.importId)
      if (!prev || isNewer(progress, prev)) early.set(progress.importId, progress)
      return
    }
    if (!isNewer(progress, active.progress)) return
    active.progress = progress
    if (progress.status === 'running') refreshWhileRunning(active.datasetId)
    else void finish(active)
  }

  async function finish(active: ActiveImport): Promise<void> {
    datasets.changed(active.datasetId)
    try {
      active.report = await studio().call('imports.report', { importId: active.importId })
    } catch (e) {
      active.reportError = errorMessage(e)
    }
  }

  let listening = false
  function listen(): void {
    if (listening) return
    listening = true
    studio().onEvent((event) => {
      if (event.event === 'import.progress') apply(event.payload)
    })
  }

  /** Starts an import; resolves once the backend accepted it (a bad path is refused here). */
  async function start(source: ImportSource, target: ImportTarget): Promise<ActiveImport> {
    listen()
    const first = await studio().call('imports.start', { ...target, source })
    const active: ActiveImport = { importId: first.importId, datasetId: first.datasetId, source, progress: first, report: null, reportError: null, cancelling: false }
    byDataset.value[first.datasetId] = active
    const stored = byDataset.value[first.datasetId]
    if ('newDatasetName' in target) {
      await datasets.loadList()
      datasets.select(first.datasetId)
    }
    const buffered = early.get(first.importId)
    early.delete(first.importId)
    if (buffered && isNewer(buffered, stored.progress)) stored.progress = buffered
    if (stored.progress.status !== 'running') void finish(stored)
    return stored
  }

  async function cancel(datasetId: number): Promise<void> {
    const active = byDataset.value[datasetId]
    if (!active || active.progress.status !== 'running') return
    active.cancelling = true
    try {
      await studio().call('imports.cancel', { importId: active.importId })
    } finally {
      active.cancelling = false
    }
  }

  function dismiss(datasetId: number): void {
    const { [datasetId]: _gone, ...rest } = byDataset.value
    byDataset.value = rest
  }

  return { byDataset, running, start, cancel, dismiss, listen }
})
