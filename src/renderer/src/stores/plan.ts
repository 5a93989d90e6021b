import { defineStore } from 'pinia'
import { computed, ref, watch } from 'vue'
import { StorageSerializers, useStorage, watchDebounced } from '@vueuse/core'
import type { DatasetStats, DatasetSummary, WeightsInfo } from '../../../shared/dto'
import { ApiError } from '../../../shared/errors'
import {
  LR_GROUPS,
  PLAN_CLASSIFIER_LAYERS,
  PLAN_DEPTHS,
  PLAN_LIMITS,
  PLAN_PRESET_NAMES,
  lrGroupOf,
  modeTrains,
  planLayerNames,
  type LayerMode,
  type LayerPlan,
  type LrGroup,
  type PlanDepth,
  type PlanPresetInfo,
  type PlanPresetName,
  type PlanTotals
} from '../../../shared/layer-plan-schema'
import { studio } from '../api/client'

/** A problem (blocks "Use this plan") or a warning, at the field it concerns (`layers.block5_conv1`, `inputSize`, ...). */
export interface PlanIssue {
  severity: 'error' | 'warning'
  code: string
  field: string
  message: string
}

export interface PlanCheckState {
  problems: PlanIssue[]
  warnings: PlanIssue[]
  /** The last totals the backend computed; null until the first evaluation succeeded. */
  totals: PlanTotals | null
  /** True when the totals belong to an earlier plan (the current one could not be evaluated). */
  stale: boolean
}

export type PlanOptimizer = PlanTotals['optimizer']
/** The WN choice of the picker: none, or on every layer that trains. */
export type WeightNormSetting = 'none' | 'trained'
/** Groups the per-block shortcuts act on. */
export type LayerGroup = 'block1' | 'block2' | 'block3' | 'block4' | 'block5' | 'classifier'

/** Classes assumed while no dataset is chosen: the plan can be explored without one. */
export const EXPLORE_CLASSES = 10
const KEY = 'finetune-studio:plan'
const BATCH_LIMITS = { min: 1, max: 4096 }

/** Structure only (values may still be out of range: the backend reports those at their field). */
function isUsablePlan(value: unknown): value is LayerPlan {
  if (typeof value !== 'object' || value === null) return false
  const p = value as Partial<LayerPlan>
  if (!PLAN_DEPTHS.includes(p.depth as PlanDepth)) return false
  for (const key of ['inputSize', 'numClasses', 'fcWidth', 'dropout'] as const) if (typeof p[key] !== 'number') return false
  if (typeof p.pretrainedFc !== 'boolean' || typeof p.layers !== 'object' || p.layers === null) return false
  if (typeof p.lrMultipliers !== 'object' || p.lrMultipliers === null) return false
  const names = planLayerNames(p.depth as PlanDepth)
  return names.length === Object.keys(p.layers).length && names.every((n) => typeof p.layers?.[n] === 'string') && LR_GROUPS.every((g) => typeof p.lrMultipliers?.[g] === 'number')
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** The layer names a group shortcut acts on. */
export function groupLayers(plan: LayerPlan, group: LayerGroup): string[] {
  return planLayerNames(plan.depth).filter((n) => (group === 'classifier' ? (PLAN_CLASSIFIER_LAYERS as readonly string[]).includes(n) : n.startsWith(`${group}_`)))
}

/**
 * The layer plan the person is building (read by the Train view), the weights it starts from,
 * and the backend's verdict on it (`check`: problems, warnings, totals), re-evaluated shortly
 * after every change. Everything the person chose survives a reload (localStorage).
 */
export const usePlanStore = defineStore('plan', () => {
  const plan = useStorage<LayerPlan | null>(KEY, null, undefined, { serializer: StorageSerializers.object })
  const preset = useStorage<PlanPresetName>(`${KEY}-preset`, 'last-block-head')
  /** True once a layer, lr or classifier setting was changed by hand after the preset. */
  const edited = useStorage(`${KEY}-edited`, false)
  const weightNorm = useStorage<WeightNormSetting>(`${KEY}-wn`, 'trained')
  const datasetId = useStorage(`${KEY}-dataset`, 0)
  /** Classes of the head while no dataset is chosen. */
  const exploreClasses = useStorage(`${KEY}-classes`, EXPLORE_CLASSES)
  const batchSize = useStorage(`${KEY}-batch`, 32)
  const optimizer = useStorage<PlanOptimizer>(`${KEY}-optimizer`, 'adam')
  const weightsPath = useStorage(`${KEY}-weights-path`, '')
  const weightsInfo = useStorage<WeightsInfo | null>(`${KEY}-weights-info`, null, undefined, { serializer: StorageSerializers.object })
  /** "No weights": every layer starts from random values. */
  const randomInit = useStorage(`${KEY}-random-init`, false)
  /** The plan last confirmed with "Use this plan". */
  const usedPlan = useStorage<LayerPlan | null>(`${KEY}-used`, null, undefined, { serializer: StorageSerializers.object })

  const presets = ref<PlanPresetInfo[]>(PLAN_PRESET_NAMES.map((name) => ({ name, label: name, description: '' })))
  const datasets = ref<DatasetSummary[]>([])
  const datasetsLoaded = ref(false)
  const stats = ref<DatasetStats | null>(null)
  const loadError = ref<string | null>(null)
  const weightsError = ref<string | null>(null)
  const inspecting = ref(false)
  const checking = ref(false)
  const serverCheck = ref<PlanCheckState>({ problems: [], warnings: [], totals: null, stale: true })

  const dataset = computed(() => datasets.value.find((d) => d.id === datasetId.value) ?? null)
  // A class without labelled images cannot train: the head (and the run's snapshot) leave it out.
  const classNames = computed(() =>
    stats.value && stats.value.dataset.id === datasetId.value ? stats.value.classes.filter((c) => c.count > 0).map((c) => c.name) : []
  )
  /** What the head is sized for: the chosen dataset's classes with images, else the explore value. */
  const numClasses = computed(() =>
    dataset.value ? (stats.value?.dataset.id === dataset.value.id ? classNames.value.length : dataset.value.classCount) : exploreClasses.value
  )

  // --- Loading ---

  async function loadPresets(): Promise<void> {
    try {
      presets.value = await studio().call('plans.presets')
    } catch (e) {
      loadError.value = messageOf(e)
    }
  }

  async function loadStats(): Promise<void> {
    const id = datasetId.value
    if (!id) {
      stats.value = null
      return
    }
    try {
      const fresh = await studio().call('datasets.stats', { datasetId: id })
      if (id === datasetId.value) stats.value = fresh
    } catch (e) {
      loadError.value = messageOf(e)
    }
  }

  async function loadDatasets(): Promise<void> {
    try {
      datasets.value = await studio().call('datasets.list')
      loadError.value = null
    } catch (e) {
      loadError.value = messageOf(e)
    } finally {
      datasetsLoaded.value = true
    }
    if (!datasets.value.some((d) => d.id === datasetId.value)) datasetId.value = datasets.value[0]?.id ?? 0
    await loadStats()
  }

  watch(datasetId, () => void loadStats())
  watch(numClasses, (n) => {
    if (plan.value && plan.value.numClasses !== n) plan.value.numClasses = n
  })

  let started = false
  /** Loads presets and datasets, makes a first plan when there is none, and starts evaluating. */
  async function init(): Promise<void> {
    const first = !started
    started = true
    await Promise.all([loadPresets(), loadDatasets()])
    if (!isUsablePlan(plan.value)) await applyPreset(preset.value)
    else if (plan.value.numClasses !== numClasses.value) plan.value.numClasses = numClasses.value
    if (first) {
      studio().onEvent((event) => {
        if ((event.event === 'import.progress' && event.payload.status === 'completed') || event.event === 'labels.changed') void loadDatasets()
      })
    }
    await evaluate()
  }

  // --- Editing ---

  async function applyPreset(name: PlanPresetName): Promise<void> {
    const current = plan.value
    try {
      const made = await studio().call('plans.make', {
        preset: name,
        numClasses: numClasses.value,
        depth: current?.depth ?? 16,
        inputSize: current?.inputSize ?? PLAN_LIMITS.pretrainedInputSize,
        weightNorm: weightNorm.value,
        dropout: current?.dropout,
        fcWidth: current?.fcWidth
      })
      plan.value = made
      preset.value = name
      edited.value = false
    } catch (e) {
      loadError.value = messageOf(e)
    }
  }

  function setWeightNorm(choice: WeightNormSetting): void {
    weightNorm.value = choice
    const p = plan.value
    if (!p) return
    for (const [name, mode] of Object.entries(p.layers)) {
      p.layers[name] = modeTrains(mode) ? (choice === 'trained' ? 'train+wn' : 'train') : 'frozen'
    }
  }

  /** A new depth keeps each layer's mode; a conv the old depth lacked takes its block's last mode. */
  function setDepth(depth: PlanDepth): void {
    const p = plan.value
    if (!p || p.depth === depth) return
    const layers: Record<string, LayerMode> = {}
    for (const name of planLayerNames(depth)) {
      const block = name.split('_')[0]
      const sameBlock = Object.keys(p.layers).filter((n) => n.startsWith(`${block}_`))
      layers[name] = p.layers[name] ?? p.layers[sameBlock[sameBlock.length - 1]] ?? 'frozen'
    }
    plan.value = { ...p, depth, layers }
  }

  /**
   * Crossing 224 (the only size where ImageNet's fc1/fc2 fit) takes the classifier defaults
   * `plans.make` gives for the new size: pretrained 4096-wide fc1/fc2 at 224, new 512-wide below.
   */
  async function setInputSize(size: number): Promise<void> {
    const p = plan.value
    if (!p || p.inputSize === size) return
    const crossing = (p.inputSize === PLAN_LIMITS.pretrainedInputSize) !== (size === PLAN_LIMITS.pretrainedInputSize)
    p.inputSize = size
    if (!crossing) return
    try {
      const made = await studio().call('plans.make', { preset: preset.value, numClasses: numClasses.value, depth: p.depth, inputSize: size, dropout: p.dropout })
      if (plan.value !== p || p.inputSize !== size) return
      p.fcWidth = made.fcWidth
      p.pretrainedFc = made.pretrainedFc
      p.lrMultipliers.fc = made.lrMultipliers.fc
    } catch (e) {
      loadError.value = messageOf(e)
    }
  }

  function setLayerMode(name: string, mode: LayerMode): void {
    const p = plan.value
    if (!p || p.layers[name] === mode) return
    p.layers[name] = mode
    edited.value = true
  }

  /** "Freeze block" / "Train block": every layer of the group, training with WN when WN is on. */
  function setGroupTrains(group: LayerGroup, trains: boolean): void {
    const p = plan.value
    if (!p) return
    const mode: LayerMode = trains ? (weightNorm.value === 'trained' ? 'train+wn' : 'train') : 'frozen'
    for (const name of groupLayers(p, group)) p.layers[name] = mode
    edited.value = true
  }

  function setShape(field: 'fcWidth' | 'dropout', value: number | null): void {
    if (!plan.value || value === null) return
    plan.value[field] = value
    edited.value = true
  }

  /** The fc width before "Start from ImageNet fc1/fc2" forced 4096, restored when it is switched off. */
  let widthBeforePretrained: number | null = null
  function setPretrainedFc(on: boolean): void {
    const p = plan.value
    if (!p) return
    p.pretrainedFc = on
    if (on && p.fcWidth !== PLAN_LIMITS.pretrainedFcWidth) {
      widthBeforePretrained = p.fcWidth
      p.fcWidth = PLAN_LIMITS.pretrainedFcWidth
    } else if (!on && widthBeforePretrained !== null) {
      p.fcWidth = widthBeforePretrained
      widthBeforePretrained = null
    }
    edited.value = true
  }

  function setLr(group: LrGroup, value: number | null): void {
    if (!plan.value || value === null) return
    plan.value.lrMultipliers[group] = value
    edited.value = true
  }

  function setExploreClasses(n: number | null): void {
    if (n !== null) exploreClasses.value = n
  }

  // --- Checking ---

  let sequence = 0
  /** Asks the backend for problems, warnings and totals; only the newest answer is kept. */
  async function evaluate(): Promise<void> {
    const p = plan.value
    if (!p) return
    const mine = ++sequence
    checking.value = true
    try {
      const result = await studio().call('plans.evaluate', { plan: p, batchSize: batchSize.value, optimizer: optimizer.value })
      if (mine !== sequence) return
      serverCheck.value = { problems: result.problems, warnings: result.warnings, totals: result.totals, stale: false }
    } catch (e) {
      if (mine !== sequence) return
      // Single-field rules fail in the contract's schema: each field comes back as a dotted path.
      const error = ApiError.from(e)
      const problems: PlanIssue[] = error.fields?.length
        ? error.fields.map((f) => ({ severity: 'error', code: 'invalid-input', field: f.path.replace(/^plan\./, ''), message: f.message }))
        : [{ severity: 'error', code: error.code, field: '', message: error.message }]
      serverCheck.value = { problems, warnings: [], totals: serverCheck.value.totals, stale: true }
    } finally {
      if (mine === sequence) checking.value = false
    }
  }

  watchDebounced(
    () => [JSON.stringify(plan.value), batchSize.value, optimizer.value],
    () => {
      if (started) void evaluate()
    },
    { debounce: 180, maxWait: 800 }
  )

  /** What the plan and the chosen weights say about each other (the backend does not know the weights). */
  const weightsIssues = computed<PlanIssue[]>(() => {
    const p = plan.value
    const info = weightsInfo.value
    const out: PlanIssue[] = []
    if (!p) return out
    if (randomInit.value) {
      if (p.pretrainedFc) out.push({ severity: 'error', code: 'random-pretrained-fc', field: 'pretrainedFc', message: 'with no weights there is no pretrained fc1/fc2 to start from: turn "Start from ImageNet fc1/fc2" off' })
      const frozen = Object.entries(p.layers).filter(([, m]) => !modeTrains(m)).map(([n]) => n)
      if (frozen.length > 0) {
        out.push({
          severity: 'warning',
          code: 'random-frozen',
          field: 'weights',
          message: `with random weights, frozen layers (${frozen.length}: ${frozen.slice(0, 3).join(', ')}${frozen.length > 3 ? ', …' : ''}) keep random values and compute nothing useful: train everything`
        })
      }
    } else if (info) {
      if (info.depth !== p.depth) out.push({ severity: 'error', code: 'weights-depth', field: 'weights', message: `the file holds VGG${info.depth} weights but the plan builds VGG${p.depth}: set the depth to ${info.depth} or choose another file` })
      if (!info.hasTop && p.pretrainedFc) out.push({ severity: 'error', code: 'weights-no-top', field: 'pretrainedFc', message: 'the weights file has no fc1/fc2 (a "notop" file): turn "Start from ImageNet fc1/fc2" off' })
    }
    return out
  })

  /** The backend's verdict plus the weights checks: what the view and the Train view read. */
  const check = computed<PlanCheckState>(() => ({
    ...serverCheck.value,
    problems: [...serverCheck.value.problems, ...weightsIssues.value.filter((i) => i.severity === 'error')],
    warnings: [...serverCheck.value.warnings, ...weightsIssues.value.filter((i) => i.severity === 'warning')]
  }))

  /** Problems and warnings at one field, e.g. `layers.block5_conv1`, `inputSize`, `lrMultipliers.fc`. */
  function issuesAt(field: string): PlanIssue[] {
    return [...check.value.problems, ...check.value.warnings].filter((i) => i.field === field)
  }

  const canUse = computed(() => plan.value !== null && !checking.value && !check.value.stale && check.value.problems.length === 0)

  function useThisPlan(): boolean {
    if (!canUse.value || !plan.value) return false
    usedPlan.value = JSON.parse(JSON.stringify(plan.value)) as LayerPlan
    return true
  }

  // --- Weights ---

  async function inspectWeights(): Promise<void> {
    const path = weightsPath.value.trim()
    if (!path) {
      weightsError.value = 'type the path of a weights file (.safetensors, .h5, or a TensorFlow.js model folder)'
      weightsInfo.value = null
      return
    }
    inspecting.value = true
    weightsError.value = null
    try {
      weightsInfo.value = await studio().call('weights.inspect', { path })
      randomInit.value = false
    } catch (e) {
      const error = ApiError.from(e)
      weightsInfo.value = null
      weightsError.value = error.fields?.find((f) => f.path === 'path')?.message ?? error.message
    } finally {
      inspecting.value = false
    }
  }

  function setRandomInit(on: boolean): void {
    randomInit.value = on
    if (on) weightsError.value = null
  }

  /** Which lr groups have a layer that trains (the others' multipliers do nothing). */
  const trainingGroups = computed(() => {
    const groups = new Set<LrGroup>()
    for (const [name, mode] of Object.entries(plan.value?.layers ?? {})) {
      const g = lrGroupOf(name)
      if (g && modeTrains(mode)) groups.add(g)
    }
    return groups
  })

  return {
    plan,
    preset,
    edited,
    weightNorm,
    datasetId,
    exploreClasses,
    batchSize,
    optimizer,
    weightsPath,
    weightsInfo,
    weightsError,
    randomInit,
    usedPlan,
    presets,
    datasets,
    datasetsLoaded,
    dataset,
    stats,
    classNames,
    numClasses,
    loadError,
    inspecting,
    checking,
    check,
    canUse,
    trainingGroups,
    batchLimits: BATCH_LIMITS,
    init,
    loadDatasets,
    applyPreset,
    setWeightNorm,
    setDepth,
    setInputSize,
    setLayerMode,
    setGroupTrains,
    setShape,
    setPretrainedFc,
    setLr,
    setExploreClasses,
    evaluate,
    issuesAt,
    useThisPlan,
    inspectWeights,
    setRandomInit
  }
})
