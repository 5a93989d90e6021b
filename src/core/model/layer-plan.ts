/**
 * Layer plans: which VGG layers stay frozen, train, or train with weight normalization, and what
 * that costs. The data behind the layer picker, and what the engine builds from.
 *
 * What is counted (all per image unless said otherwise, float32 everywhere):
 *
 * - Parameters, exactly as `buildVgg` builds them: conv `k·k·Cin·Cout + Cout`, dense
 *   `in·out + out`, and a WN layer one `g` more per output channel (`+ Cout`).
 * - Forward FLOPs: `2·k·k·Cin·Cout·H·W` per conv (H, W of its output; "same" padding counted as
 *   if every tap were inside), `2·in·out` per dense: two FLOPs per multiply-accumulate. Bias,
 *   ReLU, pooling, dropout and WN's per-step norm are not counted (under 1% of the total). VGG16
 *   at 224 comes to 30.94 GFLOPs: the familiar "15.47 G" for VGG16 counts multiply-accumulates.
 * - Backward FLOPs of a layer: its input gradient costs one forward (a conv with the flipped
 *   kernel, or `dy·Wᵀ`) and is needed when some trainable layer lies before it; its weight
 *   gradient costs one forward (`xᵀ·dy`, or the conv filter gradient) and is needed when it
 *   trains. The first trainable layer needs no input gradient. So with every layer training,
 *   training ≈ 3 × forward minus block1_conv1's input gradient.
 * - Training FLOPs = forward of the whole network + backward. `trainWithFeatureCache` leaves out
 *   the forward of the frozen prefix (computed once per image and cached).
 * - Activations kept for backprop: from the input of the first trainable layer to the logits,
 *   one float32 tensor per layer output (the input of each layer after it, the ReLU masks and
 *   pooling switches all come from these; flatten is a reshape and costs nothing). Frozen
 *   layers before the first trainable one keep nothing. This is what backprop needs, and what
 *   the trainer keeps for VGG's relu convs (engine/relu-conv.ts); recorded op by op, TF.js
 *   would also keep each conv's output and pre-activation.
 * - Training memory per step (bytes) = 4·(batch·keptActivationsPerImage + allParams +
 *   trainableParams [gradients] + slots·trainableParams [optimizer state]), slots = 2 for Adam,
 *   1 for momentum, 0 for plain SGD. Transient buffers of a single op are not included.
 */
import {
  dropoutProblem,
  fcWidthProblem,
  inputSizeProblem,
  layerNameProblems,
  lrGroupOf,
  LR_GROUPS,
  lrMultiplierProblem,
  modeHasWeightNorm,
  modeTrains,
  numClassesProblem,
  PLAN_BLOCK_CONVS,
  PLAN_DEPTHS,
  PLAN_LIMITS,
  PLAN_PRESET_NAMES,
  planLayerNames,
  type LayerMode,
  type LayerPlan,
  type LrGroup,
  type LrMultipliers,
  type PlanCheck,
  type PlanDepth,
  type PlanLayerRow,
  type PlanPresetInfo,
  type PlanPresetName,
  type PlanProblem,
  type PlanTotals,
  type PlanWarning,
  type WeightNormChoice
} from '../../shared/layer-plan-schema'
// Type only: this module must not load TensorFlow.js (services evaluate plans in the main process).
import type { VggOptions } from './vgg'

const FLOAT_BYTES = 4
const PRETRAINED_INPUT_SIZE = PLAN_LIMITS.pretrainedInputSize
const FULL_FC_WIDTH = PLAN_LIMITS.pretrainedFcWidth
/** fc1/fc2 width below 224 unless a plan says otherwise (as `buildVgg`'s default). */
export const DEFAULT_SMALL_FC_WIDTH = 512
const VGG_BLOCK_FILTERS = [64, 128, 256, 512, 512] as const
/** A WN layer with at least this many weights in `v` gets a cost warning (VGG16@224: fc1, fc2). */
export const WN_LARGE_LAYER_WEIGHTS = 10_000_000
const CONV_KERNEL = 3

type ClassifierLayer = 'fc1' | 'fc2' | 'predictions'

export interface PlanPreset extends PlanPresetInfo {
  /** Conv blocks (1–5) whose every conv trains. */
  trainedBlocks: readonly number[]
  /** Classifier layers that train. */
  trainedClassifier: readonly ClassifierLayer[]
  /** Where WN goes unless `makePlan` is told otherwise. */
  weightNorm: WeightNormChoice
  /** lr multipliers: layers that start from pretrained weights, and new layers. */
  lr: { pretrained: number; new: number }
}

const FINE_TUNE_LR = { pretrained: 0.1, new: 1 } as const

export const presets: Readonly<Record<PlanPresetName, PlanPreset>> = {
  'head-only': {
    name: 'head-only',
    label: 'Head only',
    description: 'Only the new predictions layer trains; every pretrained layer stays frozen (a linear probe on VGG features).',
    trainedBlocks: [],
    trainedClassifier: ['predictions'],
    weightNorm: 'trained',
    lr: FINE_TUNE_LR
  },
  'last-block-head': {
    name: 'last-block-head',
    label: 'Last block + classifier',
    description: 'block5 and the classifier (fc1, fc2, predictions) train; blocks 1–4 stay frozen.',
    trainedBlocks: [5],
    trainedClassifier: ['fc1', 'fc2', 'predictions'],
    weightNorm: 'trained',
    lr: FINE_TUNE_LR
  },
  'last-two-blocks-head': {
    name: 'last-two-blocks-head',
    label: 'Last two blocks + classifier',
    description: 'block4, block5 and the classifier train; blocks 1–3 stay frozen.',
    trainedBlocks: [4, 5],
    trainedClassifier: ['fc1', 'fc2', 'predictions'],
    weightNorm: 'trained',
    lr: FINE_TUNE_LR
  },
  everything: {
    name: 'everything',
    label: 'Everything',
    description: 'Every layer trains: pretrained layers at a tenth of the learning rate, new ones at the full rate.',
    trainedBlocks: [1, 2, 3, 4, 5],
    trainedClassifier: ['fc1', 'fc2', 'predictions'],
    weightNorm: 'trained',
    lr: FINE_TUNE_LR
  }
}

/** The presets in picker order, as plain data for the contract. */
export function listPresets(): PlanPresetInfo[] {
  return PLAN_PRESET_NAMES.map((name) => {
    const { label, description } = presets[name]
    return { name, label, description }
  })
}

export interface MakePlanOptions {
  /** Default 16. */
  depth?: PlanDepth
  /** Default 224 (the pretrained size). */
  inputSize?: number
  numClasses: number
  /**
   * `none`: no WN. `trained`: WN on every layer that trains. `all`: WN on every layer, frozen
   * ones too (`frozen+wn`), which `validatePlan` reports for each frozen layer: it is meant for
   * `everything`, where it equals `trained`. Default: the preset's choice (`trained`).
   */
  weightNorm?: WeightNormChoice
  /** Default 4096 at 224, 512 below. */
  fcWidth?: number
  /** Default 0.5. */
  dropout?: number
  /** Default: true exactly when the ImageNet fc1/fc2 fit (input 224, width 4096). */
  pretrainedFc?: boolean
}

function blockOf(layerName: string): number | null {
  const m = /^block(\d)_conv\d+$/.exec(layerName)
  return m === null ? null : Number(m[1])
}

/** A complete plan from a preset. Not validated: pass it to `validatePlan`. */
export function makePlan(preset: PlanPresetName, options: MakePlanOptions): LayerPlan {
  const p = presets[preset]
  if (p === undefined) throw new Error(`unknown preset '${String(preset)}' (expected one of ${PLAN_PRESET_NAMES.join(', ')})`)
  const depth = options.depth ?? 16
  if (!PLAN_DEPTHS.includes(depth)) throw new Error(`depth must be one of ${PLAN_DEPTHS.join(', ')}, got ${String(depth)}`)
  const inputSize = options.inputSize ?? PRETRAINED_INPUT_SIZE
  const fcWidth = options.fcWidth ?? (inputSize === PRETRAINED_INPUT_SIZE ? FULL_FC_WIDTH : DEFAULT_SMALL_FC_WIDTH)
  const pretrainedFc = options.pretrainedFc ?? (inputSize === PRETRAINED_INPUT_SIZE && fcWidth === FULL_FC_WIDTH)
  const weightNorm = options.weightNorm ?? p.weightNorm
  const layers: Record<string, LayerMode> = {}
  for (const name of planLayerNames(depth)) {
    const block = blockOf(name)
    const trains = block === null ? p.trainedClassifier.includes(name as ClassifierLayer) : p.trainedBlocks.includes(block)
    const wn = weightNorm === 'all' || (weightNorm === 'trained' && trains)
    layers[name] = trains ? (wn ? 'train+wn' : 'train') : wn ? 'frozen+wn' : 'frozen'
  }
  const lrMultipliers: LrMultipliers = {
    block1: p.lr.pretrained,
    block2: p.lr.pretrained,
    block3: p.lr.pretrained,
    block4: p.lr.pretrained,
    block5: p.lr.pretrained,
    fc: pretrainedFc ? p.lr.pretrained : p.lr.new,
    predictions: p.lr.new
  }
  return { depth, inputSize, numClasses: options.numClasses, fcWidth, dropout: options.dropout ?? 0.5, pretrainedFc, layers, lrMultipliers }
}

// --- Problems and warnings ---

function problem(code: PlanProblem['code'], field: string, message: string): PlanProblem {
  return { severity: 'error', code, field, message }
}

function warning(code: PlanWarning['code'], field: string, message: string): PlanWarning {
  return { severity: 'warning', code, field, message }
}

/** Problems that keep the plan from describing a model at all (bad sizes, wrong layer names). */
function shapeProblems(plan: LayerPlan): PlanProblem[] {
  if (!PLAN_DEPTHS.includes(plan.depth)) {
    return [problem('depth', 'depth', `depth must be one of ${PLAN_DEPTHS.join(', ')}, got ${String(plan.depth)}`)]
  }
  const out: PlanProblem[] = []
  const rules: [PlanProblem['code'], string, string | null][] = [
    ['input-size', 'inputSize', inputSizeProblem(plan.inputSize)],
    ['num-classes', 'numClasses', numClassesProblem(plan.numClasses)],
    ['fc-width', 'fcWidth', fcWidthProblem(plan.fcWidth)],
    ['dropout', 'dropout', dropoutProblem(plan.dropout)]
  ]
  for (const [code, field, message] of rules) if (message !== null) out.push(problem(code, field, message))
  for (const group of LR_GROUPS) {
    const message = lrMultiplierProblem(plan.lrMultipliers?.[group] ?? Number.NaN)
    if (message !== null) out.push(problem('lr-multiplier', `lrMultipliers.${group}`, message))
  }
  for (const p of layerNameProblems(plan.depth, Object.keys(plan.layers ?? {}))) {
    out.push(problem(p.code, `layers.${p.layer}`, p.message))
  }
  return out
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}G`
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`
  return String(n)
}

function formatFlops(n: number): string {
  const scaled = formatCount(n)
  return /[kMG]$/.test(scaled) ? `${scaled.slice(0, -1)} ${scaled.slice(-1)}FLOPs` : `${scaled} FLOPs`
}

function rangeLabel(names: readonly string[]): string {
  return names.length === 1 ? names[0] : `${names[0]} … ${names[names.length - 1]} (${names.length} layers)`
}

/**
 * Everything wrong with a plan (`problems`: the engine will not build it) and everything
 * costly or unusual about it (`warnings`). Each names the field it concerns as a dotted path.
 */
export function validatePlan(plan: LayerPlan): PlanCheck {
  const problems = shapeProblems(plan)
  const warnings: PlanWarning[] = []
  if (problems.some((p) => p.code === 'depth' || p.code === 'layer-missing' || p.code === 'layer-unknown')) {
    return { problems, warnings }
  }
  const names = planLayerNames(plan.depth)
  const mode = (name: string) => plan.layers[name]
  for (const name of names) {
    if (mode(name) === 'frozen+wn') {
      problems.push(problem('wn-on-frozen', `layers.${name}`, `${name}: weight normalization applies only to a layer that trains`))
    }
  }
  if (!names.some((name) => modeTrains(mode(name)))) {
    problems.push(problem('nothing-trains', 'layers', 'nothing trains: choose at least one layer to train'))
  }
  const sizeOk = inputSizeProblem(plan.inputSize) === null
  if (plan.pretrainedFc && sizeOk && plan.inputSize !== PLAN_LIMITS.pretrainedInputSize) {
    const side = plan.inputSize / 32
    problems.push(
      problem(
        'pretrained-fc-input-size',
        'pretrainedFc',
        `pretrained fc1/fc2 (ImageNet weights) fit only input size ${PLAN_LIMITS.pretrainedInputSize}, where fc1 reads 7·7·512 = 25088 features; ` +
          `at ${plan.inputSize} it reads ${side}·${side}·512 = ${side * side * 512}: make fc1/fc2 new or use input size ${PLAN_LIMITS.pretrainedInputSize}`
      )
    )
  }
  if (plan.pretrainedFc && fcWidthProblem(plan.fcWidth) === null && plan.fcWidth !== PLAN_LIMITS.pretrainedFcWidth) {
    problems.push(
      problem(
        'pretrained-fc-width',
        'fcWidth',
        `pretrained fc1/fc2 are ${PLAN_LIMITS.pretrainedFcWidth} wide, the plan asks for ${plan.fcWidth}: use ${PLAN_LIMITS.pretrainedFcWidth} or make fc1/fc2 new`
      )
    )
  }
  if (problems.some((p) => p.code !== 'wn-on-frozen' && p.code !== 'nothing-trains' && !p.code.startsWith('pretrained-fc'))) {
    return { problems, warnings }
  }

  const rows = planRows(plan)
  const byName = new Map(rows.map((r) => [r.name, r]))
  // WN's norm over a huge v, every step.
  for (const name of names) {
    const row = byName.get(name)
    if (row === undefined || mode(name) !== 'train+wn') continue
    const weights = row.kernelSize
    if (weights >= WN_LARGE_LAYER_WEIGHTS) {
      warnings.push(
        warning(
          'wn-large-layer',
          `layers.${name}`,
          `WN on ${name} at ${plan.inputSize} costs a norm over ${formatCount(weights)} weights every step (forward and backward); train ${name} without WN to avoid it`
        )
      )
    }
  }
  // An early block trains while a later one stays frozen.
  const convs = names.filter((n) => blockOf(n) !== null)
  const firstTrainedConv = convs.find((n) => modeTrains(mode(n)))
  if (firstTrainedConv !== undefined) {
    const block = blockOf(firstTrainedConv) ?? 0
    const frozenLater = [
      ...new Set(
        convs
          .filter((n) => (blockOf(n) ?? 0) > block && !modeTrains(mode(n)))
          .map((n) => `block${blockOf(n)}`)
      )
    ]
    if (frozenLater.length > 0) {
      warnings.push(
        warning(
          'early-block-trains',
          `layers.${firstTrainedConv}`,
          `training block${block} with frozen later blocks (${frozenLater.join(', ')}) is unusual: early blocks hold generic features, later ones usually need to adapt first`
        )
      )
    }
  }
  // Frozen layers between trainable ones: gradients still pass through them.
  const trainIdx = names.map((n, i) => (modeTrains(mode(n)) ? i : -1)).filter((i) => i >= 0)
  if (trainIdx.length > 0) {
    let run: string[] = []
    for (let i = trainIdx[0] + 1; i <= trainIdx[trainIdx.length - 1]; i++) {
      if (!modeTrains(mode(names[i]))) {
        run.push(names[i])
        continue
      }
      if (run.length > 0) {
        const flops = run.reduce((s, n) => s + (byName.get(n)?.forwardFlops ?? 0), 0)
        const verb = run.length === 1 ? 'stays' : 'stay'
        warnings.push(
          warning(
            'frozen-between',
            `layers.${run[0]}`,
            `${rangeLabel(run)} ${verb} frozen between trainable layers: gradients still flow through, costing ${formatFlops(flops)} per image each step without training ${run.length === 1 ? 'it' : 'them'}`
          )
        )
      }
      run = []
    }
  }
  // New (randomly initialized) layers that never train.
  for (const name of ['fc1', 'fc2', 'predictions'] as const) {
    const fresh = name === 'predictions' ? !(plan.pretrainedFc && plan.numClasses === 1000) : !plan.pretrainedFc
    if (!fresh || modeTrains(mode(name))) continue
    const why =
      name === 'predictions'
        ? 'the new head'
        : plan.inputSize === PLAN_LIMITS.pretrainedInputSize
          ? 'pretrained fc1/fc2 are off'
          : `ImageNet's ${name} does not fit input size ${plan.inputSize}`
    warnings.push(warning('new-layer-frozen', `layers.${name}`, `${name} is frozen but new (${why}): it keeps its random initial weights`))
  }
  return { problems, warnings }
}

// --- The model the plan builds, layer by layer ---

interface Row extends PlanLayerRow {
  /** Rows of weight layers only: kernel values (v for WN). */
  kernelSize: number
}

function weightRow(
  plan: LayerPlan,
  name: string,
  kind: 'conv' | 'dense',
  outputShape: number[],
  kernelSize: number,
  macs: number
): Row {
  const mode = plan.layers[name]
  const out = outputShape[outputShape.length - 1]
  const params = kernelSize + out + (modeHasWeightNorm(mode) ? out : 0)
  return {
    name,
    kind,
    outputShape,
    params,
    trainableParams: modeTrains(mode) ? params : 0,
    mode,
    lrGroup: lrGroupOf(name),
    forwardFlops: 2 * macs,
    backwardFlops: 0,
    activationBytes: FLOAT_BYTES * outputShape.reduce((a, b) => a * b, 1),
    keptForBackward: false,
    kernelSize
  }
}

function plainRow(name: string, kind: 'input' | 'pool' | 'flatten' | 'dropout', outputShape: number[]): Row {
  const elements = outputShape.reduce((a, b) => a * b, 1)
  return {
    name,
    kind,
    outputShape,
    params: 0,
    trainableParams: 0,
    mode: null,
    lrGroup: null,
    forwardFlops: 0,
    backwardFlops: 0,
    activationBytes: kind === 'flatten' ? 0 : FLOAT_BYTES * elements,
    keptForBackward: false,
    kernelSize: 0
  }
}

function assertDescribesModel(plan: LayerPlan): void {
  const problems = shapeProblems(plan)
  if (problems.length > 0) {
    throw new Error(`the plan does not describe a model: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`)
  }
}

/** The layers `buildVgg` makes for this plan, in order, with costs filled in. */
function planRows(plan: LayerPlan): Row[] {
  assertDescribesModel(plan)
  const s = plan.inputSize
  const rows: Row[] = [plainRow('input', 'input', [s, s, 3])]
  let size = s
  let channels = 3
  PLAN_BLOCK_CONVS[plan.depth].forEach((convs, b) => {
    const filters = VGG_BLOCK_FILTERS[b]
    for (let c = 1; c <= convs; c++) {
      const kernel = CONV_KERNEL * CONV_KERNEL * channels * filters
      rows.push(weightRow(plan, `block${b + 1}_conv${c}`, 'conv', [size, size, filters], kernel, kernel * size * size))
      channels = filters
    }
    size /= 2
    rows.push(plainRow(`block${b + 1}_pool`, 'pool', [size, size, channels]))
  })
  const features = size * size * channels
  rows.push(plainRow('flatten', 'flatten', [features]))
  const dense = (name: string, inputs: number, units: number) => rows.push(weightRow(plan, name, 'dense', [units], inputs * units, inputs * units))
  dense('fc1', features, plan.fcWidth)
  if (plan.dropout > 0) rows.push(plainRow('fc1_dropout', 'dropout', [plan.fcWidth]))
  dense('fc2', plan.fcWidth, plan.fcWidth)
  if (plan.dropout > 0) rows.push(plainRow('fc2_dropout', 'dropout', [plan.fcWidth]))
  dense('predictions', plan.fcWidth, plan.numClasses)

  const firstTrainable = rows.findIndex((r) => r.mode !== null && modeTrains(r.mode))
  if (firstTrainable >= 0) {
    // The first trainable layer's input (through flatten, a view), then every output after it.
    let keepFrom = firstTrainable - 1
    while (rows[keepFrom].kind === 'flatten') keepFrom--
    rows.forEach((r, i) => {
      r.keptForBackward = i >= keepFrom && r.kind !== 'flatten'
      const inputGradient = i > firstTrainable ? r.forwardFlops : 0
      const weightGradient = r.mode !== null && modeTrains(r.mode) ? r.forwardFlops : 0
      r.backwardFlops = inputGradient + weightGradient
    })
  }
  return rows
}

/** Index of the last row of the longest frozen, deterministic prefix (after `input`), or -1. */
function frozenPrefixIndex(rows: readonly Row[]): number {
  let last = -1
  for (let i = 1; i < rows.length; i++) {
    const r = rows[i]
    if (r.kind === 'dropout' || (r.mode !== null && modeTrains(r.mode))) break
    last = i
  }
  return last
}

/**
 * The last layer of the longest frozen prefix: the feature cache computes the model up to and
 * including it once per image. It stops before the first trainable layer and before the first
 * dropout (random at every step, so its output cannot be cached). Pools and `flatten` belong to
 * the prefix, so a frozen block ends at its pool (e.g. `block4_pool`, 4× smaller than
 * `block4_conv3`). null when `block1_conv1` trains.
 */
export function frozenPrefix(plan: LayerPlan): string | null {
  const rows = planRows(plan)
  const i = frozenPrefixIndex(rows)
  return i < 0 ? null : rows[i].name
}

export type PlanOptimizer = PlanTotals['optimizer']
const OPTIMIZER_SLOTS: Readonly<Record<PlanOptimizer, number>> = { adam: 2, momentum: 1, sgd: 0 }

export interface PlanTotalsOptions {
  /** Images per training step (default 32). */
  batchSize?: number
  /** Default adam (two slots per trainable weight). */
  optimizer?: PlanOptimizer
}

/** Parameters, FLOPs and training memory of a plan, in total and per layer (see the module comment). */
export function planTotals(plan: LayerPlan, options: PlanTotalsOptions = {}): PlanTotals {
  const batchSize = options.batchSize ?? 32
  const optimizer = options.optimizer ?? 'adam'
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer, got ${batchSize}`)
  if (!(optimizer in OPTIMIZER_SLOTS)) throw new Error(`unknown optimizer '${String(optimizer)}'`)
  const rows = planRows(plan)
  const sum = (f: (r: Row) => number, from: readonly Row[] = rows) => from.reduce((s, r) => s + f(r), 0)

  const total = sum((r) => r.params)
  const trainable = sum((r) => r.trainableParams)
  const weightNormExtra = sum((r) => (r.mode !== null && modeHasWeightNorm(r.mode) ? r.outputShape[r.outputShape.length - 1] : 0))
  const weightNormNormedWeights = sum((r) => (r.mode === 'train+wn' || r.mode === 'frozen+wn' ? r.kernelSize : 0))

  const firstTrainable = rows.findIndex((r) => r.mode !== null && modeTrains(r.mode))
  const forward = sum((r) => r.forwardFlops)
  const backwardInput = firstTrainable < 0 ? 0 : sum((r) => r.forwardFlops, rows.slice(firstTrainable + 1))
  const backwardWeights = sum((r) => (r.mode !== null && modeTrains(r.mode) ? r.forwardFlops : 0))
  const prefixEnd = frozenPrefixIndex(rows)
  const frozenPrefixForward = sum((r) => r.forwardFlops, rows.slice(0, prefixEnd + 1))
  const train = forward + backwardInput + backwardWeights

  const activationsPerImage = sum((r) => (r.keptForBackward ? r.activationBytes : 0))
  const memory = {
    activationsPerImage,
    activations: batchSize * activationsPerImage,
    parameters: FLOAT_BYTES * total,
    gradients: FLOAT_BYTES * trainable,
    optimizerState: FLOAT_BYTES * OPTIMIZER_SLOTS[optimizer] * trainable,
    total: 0
  }
  memory.total = memory.activations + memory.parameters + memory.gradients + memory.optimizerState

  return {
    batchSize,
    optimizer,
    params: { total, trainable, frozen: total - trainable, weightNormExtra },
    flops: { forward, backwardInput, backwardWeights, train, frozenPrefixForward, trainWithFeatureCache: train - frozenPrefixForward },
    weightNormNormedWeights,
    memory,
    frozenPrefix: prefixEnd < 0 ? null : rows[prefixEnd].name,
    frozenPrefixBytesPerImage: prefixEnd < 0 ? 0 : rows[prefixEnd].activationBytes || rows[prefixEnd - 1].activationBytes,
    layers: rows.map(({ kernelSize: _kernelSize, ...row }) => row)
  }
}

// --- What the engine builds ---

/** `buildVgg` options for a plan (add `weights` to start from pretrained ones). */
export interface PlanBuildOptions extends Omit<VggOptions, 'weights' | 'weightNorm' | 'trainable'> {
  dropout: number
  fcWidth: number
  weightNorm: ReadonlySet<string>
  trainable: ReadonlySet<string>
  /**
   * Layers that start freshly initialized even when pretrained weights have them: the head
   * always, fc1/fc2 unless the plan says `pretrainedFc`. Leave them out of the weights passed
   * to `buildVgg` (where shapes fit, `buildVgg` would otherwise load them).
   */
  freshLayers: ReadonlySet<string>
}

/** The options that make `buildVgg` build exactly this plan. Throws when the plan has problems. */
export function toBuildOptions(plan: LayerPlan): PlanBuildOptions {
  const { problems } = validatePlan(plan)
  if (problems.length > 0) {
    throw new Error(`the plan cannot be built: ${problems.map((p) => p.message).join('; ')}`)
  }
  const names = planLayerNames(plan.depth)
  return {
    depth: plan.depth,
    inputSize: plan.inputSize,
    numClasses: plan.numClasses,
    fcWidth: plan.fcWidth,
    dropout: plan.dropout,
    weightNorm: new Set(names.filter((n) => modeHasWeightNorm(plan.layers[n]))),
    trainable: new Set(names.filter((n) => modeTrains(plan.layers[n]))),
    freshLayers: new Set(plan.pretrainedFc ? ['predictions'] : ['fc1', 'fc2', 'predictions'])
  }
}

/** The lr multiplier of a layer's group (`block3_conv2` -> `lrMultipliers.block3`). */
export function lrMultiplierOf(plan: LayerPlan, layerName: string): number {
  const group: LrGroup | null = lrGroupOf(layerName)
  if (group === null) throw new Error(`${layerName} belongs to no lr group`)
  return plan.lrMultipliers[group]
}

/** The minimal view of a built model that `lrMultipliersByVariable` reads (a `tf.LayersModel` fits). */
export interface ModelVariables {
  layers: readonly { name: string; trainableWeights: readonly { name: string }[] }[]
}

/**
 * Variable name -> lr multiplier for every trainable variable of a model built from the plan
 * (`block5_conv1/v`, `block5_conv1/g`, `block5_conv1/bias`, ... with whatever suffix TF.js gave
 * them), so an optimizer can scale each gradient by its group's multiplier. Throws when a
 * trainable variable belongs to a layer the plan does not train (the model is not this plan's).
 */
export function lrMultipliersByVariable(plan: LayerPlan, model: ModelVariables): Map<string, number> {
  const out = new Map<string, number>()
  for (const layer of model.layers) {
    if (layer.trainableWeights.length === 0) continue
    const mode = plan.layers[layer.name]
    if (mode === undefined || !modeTrains(mode)) {
      throw new Error(`${layer.name} has trainable weights, but the plan does not train it: was the model built from another plan?`)
    }
    const multiplier = lrMultiplierOf(plan, layer.name)
    for (const w of layer.trainableWeights) out.set(w.name, multiplier)
  }
  return out
}
