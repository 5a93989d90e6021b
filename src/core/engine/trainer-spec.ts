/**
 * Everything one training run needs, as plain JSON: what the service sends to the trainer child
 * process (and what `train` takes in-process). Validated with zod on arrival; an invalid spec is
 * reported naming the field at fault (`formatSpecError`).
 */
import { z } from 'zod'
import { planLayerNames, type LayerPlan } from '../../shared/layer-plan-schema'
import { lrMultiplierOf, toBuildOptions } from '../model/layer-plan'

const layerName = z.string().min(1)
const positiveInt = z.number().int().positive()
const nonNegative = z.number().finite().min(0)
const triple = z.tuple([z.number().finite(), z.number().finite(), z.number().finite()])

export const preprocessingSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('torchvision'), channelOrder: z.literal('RGB'), scale: z.number().positive(), mean: triple, std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]) }),
  z.object({ kind: z.literal('caffe'), channelOrder: z.literal('BGR'), mean: triple })
])

export const backendNameSchema = z.enum(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'])

export const trainerModelSchema = z.object({
  depth: z.union([z.literal(11), z.literal(13), z.literal(16), z.literal(19)]),
  inputSize: z.number().int().min(32).max(224).refine((n) => n % 32 === 0, 'must be a multiple of 32'),
  numClasses: positiveInt,
  fcWidth: positiveInt.optional(),
  dropout: z.number().min(0).lt(1),
  /** Layers built weight-normalized. */
  weightNorm: z.array(layerName),
  /** Layers that train; every other layer is frozen. */
  trainable: z.array(layerName).min(1, 'at least one layer must train'),
  /** Layer name -> learning-rate multiplier (missing: 1; 0 leaves the layer unchanged). */
  lrMultipliers: z.record(layerName, nonNegative)
})

export const dataItemSchema = z.object({
  /** A file path, or `<idx file>#<index>` for an image stored in an IDX file. */
  path: z.string().min(1),
  /** Index into `classNames`. */
  label: z.number().int().min(0),
  split: z.enum(['train', 'validation'])
})

export const optimizerSchema = z.object({
  kind: z.enum(['sgd', 'adam', 'adamw']),
  learningRate: z.number().positive().finite(),
  /** sgd only: heavy-ball momentum (default 0). */
  momentum: z.number().min(0).lt(1).optional(),
  /**
   * sgd/adam: L2 penalty added to the gradient; adamw: decoupled decay (`w -= lr * wd * w`).
   * Applied to kernels (and WN `v`) only, never to biases or WN `g`. Default 0.
   */
  weightDecay: nonNegative.optional(),
  /** Adam(W) moment decay rates and epsilon (defaults 0.9, 0.999, 1e-8). */
  beta1: z.number().min(0).lt(1).optional(),
  beta2: z.number().min(0).lt(1).optional(),
  epsilon: z.number().positive().optional()
})

export const scheduleSchema = z
  .object({
    kind: z.enum(['constant', 'step', 'cosine']),
    /** Linear warm-up over this many epochs (may be fractional), counted in steps. */
    warmupEpochs: nonNegative,
    /** step: multiply by `gamma` every `stepEpochs` epochs. */
    stepEpochs: positiveInt.optional(),
    gamma: z.number().positive().max(1).optional()
  })
  .refine((s) => s.kind !== 'step' || (s.stepEpochs !== undefined && s.gamma !== undefined), {
    message: "a 'step' schedule needs stepEpochs and gamma",
    path: ['stepEpochs']
  })

export const augmentationSchema = z.object({
  flip: z.boolean(),
  /** Pad by this many pixels (zeros) on every side, then crop back at a random offset. */
  crop: z.number().int().min(0),
  /** Rotate by an angle drawn uniformly from [-rotationDegrees, rotationDegrees]. */
  rotationDegrees: z.number().min(0).max(180),
  /** Multiply pixels by a factor drawn from [1 - brightness, 1 + brightness]. */
  brightness: z.number().min(0).max(1),
  /** Scale each image's deviation from its mean grey by a factor in [1 - contrast, 1 + contrast]. */
  contrast: z.number().min(0).max(1)
})

export const trainerSpecSchema = z
  .object({
    runId: z.string().min(1),
    model: trainerModelSchema,
    /** Pretrained weights to start from; null: random initialization (seeded). */
    weights: z.object({ path: z.string().min(1) }).nullable(),
    /** How pixels are prepared; when omitted: the weights' own, or torchvision when weights is null. */
    preprocessing: preprocessingSchema.optional(),
    data: z.object({
      items: z.array(dataItemSchema).min(1),
      classNames: z.array(z.string()).min(1)
    }),
    optimizer: optimizerSchema,
    schedule: scheduleSchema,
    batchSize: positiveInt,
    epochs: positiveInt,
    seed: z.number().int(),
    earlyStopping: z.object({ patience: positiveInt, metric: z.enum(['val_loss', 'val_accuracy']) }).nullable(),
    classWeights: z.enum(['none', 'balanced']),
    augmentation: augmentationSchema,
    checkpointDir: z.string().min(1),
    /**
     * 'all' keeps every epoch's checkpoint; 'last-and-best' deletes older ones once a newer one
     * is written, keeping the latest and the best (by the early-stopping metric, else val_loss).
     */
    checkpointRetention: z.enum(['all', 'last-and-best']).default('all'),
    /** A checkpoint directory written by an earlier run of the same spec: training continues after its epoch. */
    resumeFrom: z.string().min(1).optional(),
    /** Use exactly this backend (tests, benchmarks); otherwise the fastest that loads. */
    backend: backendNameSchema.optional(),
    /**
     * 'auto' computes the frozen prefix once per image when augmentation allows (see
     * feature-cache.ts); 'off' runs it every step (benchmarks, the equivalence test).
     */
    featureCache: z.enum(['auto', 'off']).default('auto'),
    /**
     * Model replicas that share each batch (data-parallel over CPU cores, see data-parallel.ts);
     * 'auto': one per core on wasm, 1 on other backends. Results depend on the number (dropout
     * and augmentation draw per replica), not on the machine.
     */
    replicas: z.union([z.literal('auto'), z.number().int().min(1).max(16)]).default('auto'),
    /** Send a `step` message every this many steps. */
    stepMetricsEvery: positiveInt.default(1)
  })
  .superRefine((spec, ctx) => {
    const k = spec.data.classNames.length
    if (spec.model.numClasses !== k) {
      ctx.addIssue({ code: 'custom', path: ['model', 'numClasses'], message: `is ${spec.model.numClasses} but data.classNames has ${k} names` })
    }
    spec.data.items.forEach((item, i) => {
      if (item.label >= k) ctx.addIssue({ code: 'custom', path: ['data', 'items', i, 'label'], message: `${item.label} is not a class index (0..${k - 1})` })
    })
    if (!spec.data.items.some((item) => item.split === 'train')) {
      ctx.addIssue({ code: 'custom', path: ['data', 'items'], message: 'has no train items' })
    }
    if (spec.earlyStopping !== null && !spec.data.items.some((item) => item.split === 'validation')) {
      ctx.addIssue({ code: 'custom', path: ['earlyStopping'], message: 'needs validation items, and data.items has none' })
    }
  })

/** A spec as the caller writes it (defaults may be left out). */
export type TrainerSpecInput = z.input<typeof trainerSpecSchema>
/** A validated spec with defaults filled in. */
export type TrainerSpec = z.output<typeof trainerSpecSchema>
export type TrainerModelSpec = TrainerSpec['model']
export type OptimizerSpec = TrainerSpec['optimizer']
export type ScheduleSpec = TrainerSpec['schedule']
export type AugmentationSpec = TrainerSpec['augmentation']
export type EarlyStoppingSpec = NonNullable<TrainerSpec['earlyStopping']>

/** "batchSize: Too small: expected number to be >0; data.items.3.label: ..." */
export function formatSpecError(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'spec'}: ${issue.message}`).join('; ')
}

/** Validates a spec; throws an Error whose message names every field at fault. */
export function parseTrainerSpec(input: unknown): TrainerSpec {
  const result = trainerSpecSchema.safeParse(input)
  if (!result.success) throw new Error(`invalid training spec: ${formatSpecError(result.error)}`)
  return result.data
}

/** The model part of a spec for a layer plan (throws when the plan has problems). */
export function trainerModelSpec(plan: LayerPlan): TrainerModelSpec {
  const { depth, inputSize, numClasses, fcWidth, dropout, weightNorm, trainable } = toBuildOptions(plan)
  const names = planLayerNames(depth)
  return {
    depth,
    inputSize,
    numClasses,
    fcWidth,
    dropout,
    weightNorm: names.filter((n) => weightNorm.has(n)),
    trainable: names.filter((n) => trainable.has(n)),
    lrMultipliers: Object.fromEntries(names.map((n) => [n, lrMultiplierOf(plan, n)]))
  }
}
