/**
 * The layer plan as it crosses the contract: which VGG layers stay frozen, train, or train with
 * weight normalization, the model's shape, and a learning-rate multiplier per group of layers.
 * Also the DTOs the layer picker shows (totals, problems, warnings).
 *
 * The schema checks structure and every single-field rule (input size, classes, fc width,
 * dropout, lr range, which layer names the depth has); `validatePlan` in core repeats those
 * rules with the same messages (for plans built in code) and adds the rules that relate fields
 * (WN on a frozen layer, nothing trains, pretrained fc at another input size) and warnings.
 *
 * This module imports only zod (shared layering): the VGG block table is repeated here from
 * `core/weights/vgg-spec.ts`, and a test checks that the two agree.
 */
import { z } from 'zod'

export const PLAN_DEPTHS = [11, 13, 16, 19] as const
export type PlanDepth = (typeof PLAN_DEPTHS)[number]
export const DEFAULT_PLAN_DEPTH: PlanDepth = 16

/** Convolutions in each of the five blocks (VGG configurations A, B, D, E). */
export const PLAN_BLOCK_CONVS: Readonly<Record<PlanDepth, readonly number[]>> = {
  11: [1, 1, 2, 2, 2],
  13: [2, 2, 2, 2, 2],
  16: [2, 2, 3, 3, 3],
  19: [2, 2, 4, 4, 4]
}

export const PLAN_CLASSIFIER_LAYERS = ['fc1', 'fc2', 'predictions'] as const

/**
 * `frozen`: weights fixed. `train`: trains as a plain layer. `train+wn`: trains as a weight
 * normalized layer (`w = g v/||v||`). `frozen+wn` is representable so that the picker can show a
 * WN toggle switched on for a frozen row, but it is always a problem: WN applies only to a layer
 * that trains (a frozen WN layer computes exactly what the plain one does, at extra cost).
 */
export const LAYER_MODES = ['frozen', 'train', 'train+wn', 'frozen+wn'] as const
export type LayerMode = (typeof LAYER_MODES)[number]

export function modeTrains(mode: LayerMode): boolean {
  return mode === 'train' || mode === 'train+wn'
}

export function modeHasWeightNorm(mode: LayerMode): boolean {
  return mode === 'train+wn' || mode === 'frozen+wn'
}

/**
 * Learning-rate groups: one per conv block, `fc` (fc1 + fc2: pretrained at 224, new below) and
 * `predictions` (the new head). The optimizer scales each trainable variable's step by its
 * group's multiplier.
 */
export const LR_GROUPS = ['block1', 'block2', 'block3', 'block4', 'block5', 'fc', 'predictions'] as const
export type LrGroup = (typeof LR_GROUPS)[number]

export const PLAN_PRESET_NAMES = ['head-only', 'last-block-head', 'last-two-blocks-head', 'everything'] as const
export type PlanPresetName = (typeof PLAN_PRESET_NAMES)[number]

export const WEIGHT_NORM_CHOICES = ['none', 'trained', 'all'] as const
export type WeightNormChoice = (typeof WEIGHT_NORM_CHOICES)[number]

export const PLAN_LIMITS = {
  inputSize: { min: 32, max: 224, step: 32 },
  /** Input size of the pretrained network: the only one where ImageNet's fc1/fc2 fit. */
  pretrainedInputSize: 224,
  /** Width of the pretrained fc1/fc2. */
  pretrainedFcWidth: 4096,
  numClasses: { min: 2, max: 100_000 },
  fcWidth: { min: 1, max: 16_384 },
  /** Multipliers lie in (0, max]. */
  lrMultiplierMax: 10
} as const

/** Conv layer names of a depth, in order: `block1_conv1`, ... */
export function planConvLayerNames(depth: PlanDepth): string[] {
  return PLAN_BLOCK_CONVS[depth].flatMap((n, b) => Array.from({ length: n }, (_, i) => `block${b + 1}_conv${i + 1}`))
}

/** Every layer a plan for `depth` has a mode for: the convs, then fc1, fc2, predictions. */
export function planLayerNames(depth: PlanDepth): string[] {
  return [...planConvLayerNames(depth), ...PLAN_CLASSIFIER_LAYERS]
}

/** The lr group of a layer name (`block3_conv2` -> `block3`), or null for a name no plan has. */
export function lrGroupOf(layerName: string): LrGroup | null {
  if (layerName === 'fc1' || layerName === 'fc2') return 'fc'
  if (layerName === 'predictions') return 'predictions'
  const m = /^block([1-5])_conv[1-9]$/.exec(layerName)
  return m === null ? null : (`block${m[1]}` as LrGroup)
}

// --- Single-field rules: each returns a message when the value breaks it, else null. ---

export function inputSizeProblem(inputSize: number): string | null {
  const { min, max, step } = PLAN_LIMITS.inputSize
  return Number.isInteger(inputSize) && inputSize % step === 0 && inputSize >= min && inputSize <= max
    ? null
    : `input size must be a multiple of ${step} from ${min} to ${max} (e.g. 32, 64, 224), got ${inputSize}`
}

export function numClassesProblem(numClasses: number): string | null {
  const { min, max } = PLAN_LIMITS.numClasses
  return Number.isInteger(numClasses) && numClasses >= min && numClasses <= max
    ? null
    : `a classifier needs at least ${min} classes (at most ${max}), got ${numClasses}`
}

export function fcWidthProblem(fcWidth: number): string | null {
  const { min, max } = PLAN_LIMITS.fcWidth
  return Number.isInteger(fcWidth) && fcWidth >= min && fcWidth <= max
    ? null
    : `fc width must be a whole number from ${min} to ${max}, got ${fcWidth}`
}

export function dropoutProblem(dropout: number): string | null {
  return dropout >= 0 && dropout < 1 ? null : `dropout must be at least 0 and below 1, got ${dropout}`
}

export function lrMultiplierProblem(multiplier: number): string | null {
  return multiplier > 0 && multiplier <= PLAN_LIMITS.lrMultiplierMax
    ? null
    : `an lr multiplier must be above 0 and at most ${PLAN_LIMITS.lrMultiplierMax}, got ${multiplier}`
}

export type LayerNameProblemCode = 'layer-missing' | 'layer-unknown'

/** Layers a depth has that `layers` lacks, and names in `layers` the depth does not have. */
export function layerNameProblems(
  depth: PlanDepth,
  layerNames: readonly string[]
): { code: LayerNameProblemCode; layer: string; message: string }[] {
  const expected = planLayerNames(depth)
  const given = new Set(layerNames)
  const known = new Set(expected)
  return [
    ...expected
      .filter((name) => !given.has(name))
      .map((layer) => ({ code: 'layer-missing' as const, layer, message: `${layer}: VGG${depth} has this layer, but the plan gives it no mode` })),
    ...layerNames
      .filter((name) => !known.has(name))
      .map((layer) => ({ code: 'layer-unknown' as const, layer, message: `${layer}: VGG${depth} has no layer of this name` }))
  ]
}

function ruled(problem: (value: number) => string | null) {
  return z.number().refine((v) => problem(v) === null, { error: (issue) => problem(issue.input as number) ?? 'invalid' })
}

export const layerModeSchema = z.enum(LAYER_MODES)
export const lrMultiplierSchema = ruled(lrMultiplierProblem)

export const lrMultipliersSchema = z
  .object({
    block1: lrMultiplierSchema,
    block2: lrMultiplierSchema,
    block3: lrMultiplierSchema,
    block4: lrMultiplierSchema,
    block5: lrMultiplierSchema,
    fc: lrMultiplierSchema,
    predictions: lrMultiplierSchema
  })
  .strict()

export const layerPlanSchema = z
  .object({
    depth: z.union([z.literal(11), z.literal(13), z.literal(16), z.literal(19)]).default(DEFAULT_PLAN_DEPTH),
    /** Square input side in pixels. */
    inputSize: ruled(inputSizeProblem),
    numClasses: ruled(numClassesProblem),
    /** Width of fc1 and fc2 (4096 for the pretrained classifier, e.g. 512 below 224). */
    fcWidth: ruled(fcWidthProblem),
    /** Dropout after fc1 and after fc2; 0 leaves the dropout layers out. */
    dropout: ruled(dropoutProblem),
    /** fc1/fc2 start from the ImageNet weights (possible only at 224 with width 4096); else new. */
    pretrainedFc: z.boolean(),
    /** One mode per weight layer of the depth, keyed by Keras layer name. */
    layers: z.record(z.string(), layerModeSchema),
    lrMultipliers: lrMultipliersSchema
  })
  .strict()
  .superRefine((plan, ctx) => {
    for (const p of layerNameProblems(plan.depth, Object.keys(plan.layers))) {
      ctx.addIssue({ code: 'custom', path: ['layers', p.layer], message: p.message })
    }
  })

/** A plan as the schema's output (defaults applied). */
export type LayerPlan = z.output<typeof layerPlanSchema>
/** A plan as a client may send it (`depth` may be left out). */
export type LayerPlanInput = z.input<typeof layerPlanSchema>
export type LrMultipliers = LayerPlan['lrMultipliers']

// --- DTOs ---

export type PlanProblemCode =
  | 'depth'
  | 'input-size'
  | 'num-classes'
  | 'fc-width'
  | 'dropout'
  | 'lr-multiplier'
  | LayerNameProblemCode
  | 'wn-on-frozen'
  | 'nothing-trains'
  | 'pretrained-fc-input-size'
  | 'pretrained-fc-width'

export type PlanWarningCode = 'wn-large-layer' | 'early-block-trains' | 'frozen-between' | 'new-layer-frozen'

/** Something that makes a plan unusable: the engine refuses to build it. */
export interface PlanProblem {
  severity: 'error'
  code: PlanProblemCode
  /** The field it concerns as a dotted path, like the contract's error fields: `layers.block5_conv1`, `inputSize`. */
  field: string
  message: string
}

/** Something legal but costly or unusual; the picker shows it, training goes ahead. */
export interface PlanWarning {
  severity: 'warning'
  code: PlanWarningCode
  field: string
  message: string
}

export interface PlanCheck {
  problems: PlanProblem[]
  warnings: PlanWarning[]
}

export type PlanLayerKind = 'input' | 'conv' | 'pool' | 'flatten' | 'dense' | 'dropout'

/** One layer of the model the plan builds, in model order (the names `buildVgg` gives). */
export interface PlanLayerRow {
  name: string
  kind: PlanLayerKind
  /** Output shape per image (no batch axis): [h, w, c] or [units]. */
  outputShape: number[]
  /** Parameters as built: kernel + bias, plus one `g` per output channel for a WN layer. */
  params: number
  trainableParams: number
  /** null for layers without weights (input, pool, flatten, dropout). */
  mode: LayerMode | null
  lrGroup: LrGroup | null
  /** Forward FLOPs per image: 2·k·k·Cin·Cout·H·W (conv), 2·in·out (dense), else 0. */
  forwardFlops: number
  /** Backward FLOPs per image: input gradient (= forward) when a trainable layer lies before it, plus weight gradient (= forward) when it trains. */
  backwardFlops: number
  /** float32 bytes of the output for one image (0 for flatten: a reshape shares its input's memory). */
  activationBytes: number
  /** Whether this output is kept for the backward pass (see `PlanTotals.memory`). */
  keptForBackward: boolean
}

export interface PlanTotals {
  batchSize: number
  optimizer: 'adam' | 'momentum' | 'sgd'
  params: {
    total: number
    trainable: number
    frozen: number
    /** The `g` vectors WN adds (one value per output channel of every WN layer). */
    weightNormExtra: number
  }
  /** Per image. `train` = forward + backward; `trainWithFeatureCache` leaves out the frozen prefix's forward. */
  flops: {
    forward: number
    backwardInput: number
    backwardWeights: number
    train: number
    frozenPrefixForward: number
    trainWithFeatureCache: number
  }
  /** Weights that WN layers take a norm over on every step (v's size). */
  weightNormNormedWeights: number
  /**
   * float32 bytes for one training step:
   * activations = batch · Σ activationBytes of the kept outputs;
   * parameters = 4 · all params; gradients = 4 · trainable params;
   * optimizerState = 4 · slots · trainable params (adam 2, momentum 1, sgd 0);
   * total = the sum of the four.
   */
  memory: {
    activationsPerImage: number
    activations: number
    parameters: number
    gradients: number
    optimizerState: number
    total: number
  }
  /** Last layer of the longest deterministic frozen prefix (what a feature cache stores), or null. */
  frozenPrefix: string | null
  /** float32 bytes per image of the frozen prefix's output (0 when there is none). */
  frozenPrefixBytesPerImage: number
  layers: PlanLayerRow[]
}

export interface PlanPresetInfo {
  name: PlanPresetName
  label: string
  description: string
}
