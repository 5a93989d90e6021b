import { defineStore } from 'pinia'
import { computed, markRaw, reactive, ref } from 'vue'
import { useStorage } from '@vueuse/core'
import type { RunDetail, RunProgress, RunSpecView, RunStatus, RunSummary, HyperparametersInput, Hyperparameters } from '../../../shared/training'
import { hyperparametersSchema } from '../../../shared/training'
import type { MethodInput } from '../../../shared/api'
import { studio } from '../api/client'
import { coalesce } from '../util/coalesce'

/** One training step as the curves draw it. */
export interface StepPoint {
  /** Global step, from 1. */
  step: number
  epoch: number
  loss: number
  accuracy: number
  learningRate: number
  imagesPerSec: number
}

/** One finished epoch; `step` is the global step it ended at (where the curves place it). */
export interface EpochPoint {
  epoch: number
  step: number
  trainLoss: number
  trainAccuracy: number
  valLoss: number | null
  valAccuracy: number | null
  seconds: number | null
}

type StepEvent = Extract<RunProgress, { type: 'step' }>
type StartedEvent = Extract<RunProgress, { type: 'started' }>
type PreparingEvent = Extract<RunProgress, { type: 'preparing' }>

/**
 * What the UI knows of one run's progress: the curves (plain arrays, not deeply reactive: they
 * may hold thousands of points and change many times a second; `version` says when they did)
 * and the last progress of each kind.
 */
export interface RunLive {
  runId: number
  steps: StepPoint[]
  epochs: EpochPoint[]
  /** Bumped whenever steps or epochs change. */
  version: number
  stepsPerEpoch: number | null
  lastStep: StepEvent | null
  preparing: PreparingEvent | null
  started: StartedEvent | null
  /** Status as the last event said (the run list may lag behind). */
  status: RunStatus | null
  failureReason: string | null
  /** True once the stored metrics were read (`runs.metrics`). */
  loaded: boolean
  loading: boolean
  loadError: string | null
}

export type { RunDetail, RunSpecView }

export const ACTIVE_STATUSES: readonly RunStatus[] = ['queued', 'running', 'paused']
export function isActive(status: RunStatus | null | undefined): boolean {
  return status !== null && status !== undefined && ACTIVE_STATUSES.includes(status)
}

const STEP_METRICS = ['step/loss', 'step/accuracy', 'step/learningRate', 'step/imagesPerSec'] as const
const EPOCH_METRICS = ['epoch/trainLoss', 'epoch/trainAccuracy', 'epoch/valLoss', 'epoch/valAccuracy', 'epoch/seconds'] as const
const KEY = 'finetune-studio:train'

function defaults(): Hyperparameters {
  return hyperparametersSchema.parse({})
}

/** Appends `incoming` points whose key lies past the last of `base` (the events that arrived while the stored ones were read). */
function mergeAfter<T>(base: T[], incoming: readonly T[], key: (p: T) => number): T[] {
  const last = base.length ? key(base[base.length - 1]) : -Infinity
  for (const p of incoming) if (key(p) > last) base.push(p)
  return base
}

/**
 * Training runs: the list (`runs.list`, kept current by `run.progress` events), each run's live
 * curves (from events, and from `runs.metrics` when a run is opened after the fact), the
 * hyperparameters the Train view edits (kept in localStorage), and the run the Train view shows.
 */
export const useRunsStore = defineStore('runs', () => {
  const runs = ref<RunSummary[]>([])
  const listLoaded = ref(false)
  const listError = ref<string | null>(null)
  const live = reactive(new Map<number, RunLive>())
  const details = reactive(new Map<number, RunDetail>())

  /** Hyperparameters the next run starts with; the schema's defaults fill anything missing. */
  const draft = useStorage<Hyperparameters>(`${KEY}-hyperparameters`, defaults(), undefined, { mergeDefaults: (stored, initial) => ({ ...initial, ...stored, augmentation: { ...initial.augmentation, ...stored.augmentation } }) })
  const runName = ref('')
  /** The run the Train view shows (survives a reload). */
  const currentRunId = useStorage<number>(`${KEY}-run`, 0)

  const current = computed(() => runs.value.find((r) => r.id === currentRunId.value) ?? null)
  const activeRun = computed(() => runs.value.find((r) => isActive(liveStatus(r))) ?? null)

  function liveStatus(run: RunSummary): RunStatus {
    return live.get(run.id)?.status ?? run.status
  }

  function ensureLive(runId: number): RunLive {
    let entry = live.get(runId)
    if (!entry) {
      live.set(runId, {
        runId,
        steps: markRaw([]),
        epochs: markRaw([]),
        version: 0,
        stepsPerEpoch: null,
        lastStep: null,
        preparing: null,
        started: null,
        status: null,
        failureReason: null,
        loaded: false,
        loading: false,
        loadError: null
      })
      entry = live.get(runId) as RunLive
    }
    return entry
  }

  const refreshList = coalesce(async () => {
    try {
      runs.value = await studio().call('runs.list')
      listError.value = null
      // The list is the truth once it has caught up with the events.
      for (const run of runs.value) {
        const entry = live.get(run.id)
        if (entry && !isActive(run.status)) {
          entry.status = run.status
          entry.failureReason = run.failureReason
        }
      }
    } catch (e) {
      listError.value = e instanceof Error ? e.message : String(e)
    } finally {
      listLoaded.value = true
    }
  })

  function patchRun(runId: number, patch: (run: RunSummary) => RunSummary): void {
    const index = runs.value.findIndex((r) => r.id === runId)
    if (index < 0) {
      void refreshList()
      return
    }
    runs.value[index] = patch(runs.value[index])
  }

  function onProgress(p: RunProgress): void {
    const entry = ensureLive(p.runId)
    switch (p.type) {
      case 'preparing':
        entry.preparing = p
        return
      case 'started':
        entry.started = p
        entry.stepsPerEpoch = p.stepsPerEpoch
        entry.status = 'running'
        patchRun(p.runId, (r) => ({ ...r, backend: p.backend, status: 'running', epochs: p.epochs }))
        return
      case 'step': {
        entry.stepsPerEpoch = p.stepsPerEpoch
        entry.lastStep = p
        if (entry.status === null || entry.status === 'queued') entry.status = 'running'
        const last = entry.steps[entry.steps.length - 1]
        if (!last || p.globalStep > last.step) {
          entry.steps.push({ step: p.globalStep, epoch: p.epoch, loss: p.loss, accuracy: p.accuracy, learningRate: p.learningRate, imagesPerSec: p.imagesPerSec })
          entry.version++
        }
        return
      }
      case 'epoch': {
        const last = entry.epochs[entry.epochs.length - 1]
        if (!last || p.epoch > last.epoch) {
          const step = entry.stepsPerEpoch ? p.epoch * entry.stepsPerEpoch : (entry.steps[entry.steps.length - 1]?.step ?? p.epoch)
          entry.epochs.push({ epoch: p.epoch, step, trainLoss: p.trainLoss, trainAccuracy: p.trainAccuracy, valLoss: p.valLoss, valAccuracy: p.valAccuracy, seconds: p.seconds })
          entry.version++
        }
        patchRun(p.runId, (r) => ({
          ...r,
          epochsCompleted: Math.max(r.epochsCompleted, p.epoch),
          latest: { epoch: p.epoch, trainLoss: p.trainLoss, trainAccuracy: p.trainAccuracy, valLoss: p.valLoss, valAccuracy: p.valAccuracy }
        }))
        return
      }
      case 'status':
        entry.status = p.status
        entry.failureReason = p.failureReason
        patchRun(p.runId, (r) => ({ ...r, status: p.status, failureReason: p.failureReason }))
        // Times, backend and the final epoch come from the backend's record.
        if (!isActive(p.status) || p.status === 'running') void refreshList()
        return
    }
  }

  /** Reads a run's stored metrics, keeping any points events brought in the meantime. */
  async function loadMetrics(runId: number, force = false): Promise<RunLive> {
    const entry = ensureLive(runId)
    if ((entry.loaded && !force) || entry.loading) return entry
    entry.loading = true
    try {
      const series = await studio().call('runs.metrics', { runId, names: [...STEP_METRICS, ...EPOCH_METRICS] })
      const byName = new Map(series.map((s) => [s.name, s.points]))
      const stepMap = new Map<number, StepPoint>()
      for (const name of STEP_METRICS) {
        const key = name.slice('step/'.length) as 'loss' | 'accuracy' | 'learningRate' | 'imagesPerSec'
        for (const point of byName.get(name) ?? []) {
          const p = stepMap.get(point.step) ?? { step: point.step, epoch: point.epoch, loss: NaN, accuracy: NaN, learningRate: NaN, imagesPerSec: NaN }
          p[key] = point.value
          stepMap.set(point.step, p)
        }
      }
      const epochMap = new Map<number, EpochPoint>()
      for (const name of EPOCH_METRICS) {
        for (const point of byName.get(name) ?? []) {
          const p = epochMap.get(point.epoch) ?? { epoch: point.epoch, step: point.step, trainLoss: NaN, trainAccuracy: NaN, valLoss: null, valAccuracy: null, seconds: null }
          const key = name.slice('epoch/'.length) as keyof Omit<EpochPoint, 'epoch' | 'step'>
          p[key] = point.value
          epochMap.set(point.epoch, p)
        }
      }
      const steps = [...stepMap.values()].sort((a, b) => a.step - b.step)
      const epochs = [...epochMap.values()].sort((a, b) => a.epoch - b.epoch)
      entry.steps = markRaw(mergeAfter(steps, entry.steps, (p) => p.step))
      entry.epochs = markRaw(mergeAfter(epochs, entry.epochs, (p) => p.epoch))
      if (entry.stepsPerEpoch === null && epochs.length > 0 && epochs[0].step > 0) entry.stepsPerEpoch = epochs[0].step / epochs[0].epoch
      entry.version++
      entry.loaded = true
      entry.loadError = null
    } catch (e) {
      entry.loadError = e instanceof Error ? e.message : String(e)
    } finally {
      entry.loading = false
    }
    return entry
  }

  /** The run with its spec when the backend sends one (`runs.get`). */
  async function loadDetail(runId: number): Promise<RunDetail | null> {
    try {
      const detail = (await studio().call('runs.get', { runId })) as RunDetail
      details.set(runId, detail)
      return detail
    } catch {
      return null
    }
  }

  /** Starts a run; rejects with the backend's ApiError (its `fields` say where the problem is). */
  async function start(input: Omit<MethodInput<'runs.start'>, 'hyperparameters'> & { hyperparameters: HyperparametersInput }): Promise<RunSummary> {
    const run = await studio().call('runs.start', input)
    const entry = ensureLive(run.id)
    entry.status ??= run.status
    if (!runs.value.some((r) => r.id === run.id)) runs.value = [run, ...runs.value]
    currentRunId.value = run.id
    entry.loaded = true // nothing stored yet: events bring everything
    void refreshList()
    return run
  }

  async function control(runId: number, command: 'pause' | 'resume' | 'stop'): Promise<boolean> {
    const method = command === 'pause' ? 'runs.pause' : command === 'resume' ? 'runs.resume' : 'runs.stop'
    const { ok } = await studio().call(method, { runId })
    if (!ok) void refreshList()
    return ok
  }

  function resetDraft(): void {
    draft.value = defaults()
  }

  let subscribed = false
  /** Subscribes to progress events (once) and reads the run list. */
  async function init(): Promise<void> {
    if (!subscribed) {
      subscribed = true
      studio().onEvent((event) => {
        if (event.event === 'run.progress') onProgress(event.payload)
      })
      studio().onState((state) => {
        if (state === 'open' && listLoaded.value) void refreshList()
      })
    }
    await refreshList()
  }

  return {
    runs,
    listLoaded,
    listError,
    live,
    details,
    draft,
    runName,
    currentRunId,
    current,
    activeRun,
    liveStatus,
    ensureLive,
    init,
    refreshList,
    loadMetrics,
    loadDetail,
    start,
    control,
    resetDraft
  }
})
