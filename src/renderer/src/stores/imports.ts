import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { ImportProgress, ImportReport, ImportSource } from '../../../shared/dto'
import { studio } from '../api/client'
import { useStorage, useThrottleFn } from '@vueuse/core'
import { useDatasetsStore } from './datasets'
import { baseName, errorMessage } from '../util/format'

export type ImportTarget = { datasetId: number } | { newDatasetName: string }

export interface ActiveImport {
  importId: number
  datasetId: number
  /** What the panel calls the source: the folder's or file's name. */
  sourceLabel: string
  progress: ImportProgress
  report: ImportReport | null
  reportError: string | null
  cancelling: boolean
}

function labelOf(source: ImportSource): string {
  if (source.kind === 'idx') return baseName(source.images)
  if (source.kind === 'files') return source.paths.length === 1 ? baseName(source.paths[0]) : `${source.paths.length} files`
  return baseName(source.path)
}

/** The stored source of an import (`imports.list`): a path, or for IDX `images + labels`. */
function labelOfStored(report: ImportReport): string {
  return baseName(report.layout === 'idx' ? report.source.split(' + ')[0] : report.source)
}

/**
 * Imports in flight and the report of the last one per dataset. Progress comes from
 * `import.progress` events, which may arrive before `imports.start` answers: they are kept
 * by import id until the start call says which one is ours. After a reload the last import's
 * report is read back from the backend (`imports.list`); a report the person closed stays
 * closed (remembered per dataset) until they open it again.
 */
export const useImportsStore = defineStore('imports', () => {
  const datasets = useDatasetsStore()
  /** The last import per dataset id. */
  const byDataset = ref<Record<number, ActiveImport>>({})
  /** Per dataset id, the import whose report the person closed. */
  const dismissed = useStorage<Record<string, number>>('finetune-studio:dismissed-import', {})
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
    const active: ActiveImport = { importId: first.importId, datasetId: first.datasetId, sourceLabel: labelOf(source), progress: first, report: null, reportError: null, cancelling: false }
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

  /** Closes the report (it stays available through `reopen`). */
  function dismiss(datasetId: number): void {
    const active = byDataset.value[datasetId]
    if (active) dismissed.value = { ...dismissed.value, [datasetId]: active.importId }
  }

  function reopen(datasetId: number): void {
    const { [datasetId]: _gone, ...rest } = dismissed.value
    dismissed.value = rest
  }

  function isDismissed(datasetId: number): boolean {
    const active = byDataset.value[datasetId]
    return active !== undefined && dismissed.value[datasetId] === active.importId
  }

  /** Reads the dataset's last import back from the backend, unless this page already knows one. */
  async function restore(datasetId: number): Promise<void> {
    listen()
    if (!datasetId || byDataset.value[datasetId]) return
    let latest: ImportReport | undefined
    try {
      latest = (await studio().call('imports.list', { datasetId, limit: 1 }))[0]
    } catch {
      return // the dataset may just have been deleted; nothing to show
    }
    if (!latest || byDataset.value[datasetId]) return
    const running = latest.status === 'running'
    const buffered = early.get(latest.importId)
    early.delete(latest.importId)
    byDataset.value[datasetId] = {
      importId: latest.importId,
      datasetId,
      sourceLabel: labelOfStored(latest),
      progress: buffered && isNewer(buffered, latest) ? buffered : latest,
      report: running ? null : latest,
      reportError: null,
      cancelling: false
    }
    const stored = byDataset.value[datasetId]
    if (running && stored.progress.status !== 'running') void finish(stored)
  }

  return { byDataset, running, start, cancel, dismiss, reopen, isDismissed, restore, listen }
})
