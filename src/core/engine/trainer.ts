/**
 * The training loop: builds the VGG a spec describes, decodes the images once, and trains with
 * softmax cross-entropy on the logits, an optimizer with per-layer learning-rate multipliers,
 * a warm-up + constant/step/cosine schedule, augmentation, per-epoch validation, checkpoints
 * and early stopping. Runs in whatever process calls it (normally the trainer child process).
 *
 * Determinism. Every random choice is a pure function of (spec.seed, epoch, step): the data
 * order (Fisher-Yates from a seeded PRNG), augmentation (per-image parameters from a seeded
 * PRNG), dropout masks (each Dropout layer gets a fresh seed before every step: tf.dropout is
 * seeded through tf.randomUniform's alea generator), and the initialization of every layer not
 * taken from the weights file (seeded He/Glorot-uniform, bias 0; see seededInit).
 * So the same spec gives the same run on the same backend, and resuming from epoch k's
 * checkpoint gives the weights of the uninterrupted run (tested on cpu). Not deterministic:
 * results across backends (cpu, wasm/XNNPACK and TensorFlow sum in different orders, so the
 * same spec drifts apart at float precision and beyond), timing fields (seconds, imagesPerSec),
 * and possibly runs on multi-threaded kernels (tfjs-node, tfjs-node-gpu/cuDNN).
 *
 * Early stopping. With `earlyStopping` set, training stops once `patience` epochs pass without
 * the metric improving (strictly), and the model then ends with the best epoch's weights,
 * re-read from that epoch's checkpoint (`finished.restoredBest`). Without it, the model ends
 * with the last epoch's weights and `bestEpoch` only reports which epoch was best by val_loss.
 */
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { buildVgg, planVgg, planWeightLoading, type VggOptions } from '../model/vgg'
import { channelNorm, isWeightNormLayer, type WeightNormLayer } from '../model/weight-norm'
import { loadVggWeights, type LoadedVggWeights } from '../weights/load-weights'
import { TORCHVISION_PREPROCESSING, type Preprocessing } from '../weights/vgg-weights'
import {
  checkpointName,
  loadCheckpoint,
  removeCheckpoint,
  removeUnfinishedCheckpoints,
  writeCheckpoint,
  type CheckpointState,
  type CheckpointTensor,
  type LoadedCheckpoint
} from './checkpoint'
import { classWeights } from './class-weights'
import { batchLabels, batchSlices, decodeImageSet, deriveSeed, epochOrder, type ImageSet } from './data-loader'
import { buildFeatureStore, NetworkInputs, planFeatureCache, prefixOutputShape, splitAtFrozenPrefix, type FeatureCachePlan, type InputSource } from './feature-cache'
import { learningRateAt } from './lr-schedule'
import { selectBackend } from './select-backend'
import type { EpochMetrics, TrainerMessage, TrainerStatus, WeightNormStats } from './trainer-messages'
import { parseTrainerSpec, type EarlyStoppingSpec, type OptimizerSpec, type TrainerSpec, type TrainerSpecInput } from './trainer-spec'
import type { BackendName } from '../../shared/dto'

export interface TrainerHooks {
  onProgress(message: TrainerMessage): void
  /** Polled between steps: true ends the run after the current step (status 'cancelled'). */
  shouldStop(): boolean
  /** Awaited between steps: resolves at once unless the run is paused. */
  waitWhilePaused(): Promise<void>
}

export interface TrainResult {
  status: TrainerStatus
  bestEpoch: number
  history: EpochMetrics[]
  restoredBest: boolean
  finalCheckpoint: string | null
  backend: BackendName
  /** The trained model (final weights as documented above). The caller disposes it. */
  model: tf.LayersModel
}

// ---------------------------------------------------------------- optimizer

/** One trainable variable as the optimizer sees it. */
export interface OptimizedVariable {
  /** Stable name: `<layer>/<kernel|bias|v|g>`. */
  key: string
  layer: string
  variable: tf.Variable
  /** Learning-rate multiplier of its layer. */
  multiplier: number
  /** Weight decay applies: kernels and WN `v`, not biases or WN `g`. */
  decays: boolean
}

/**
 * SGD (momentum), Adam and AdamW with a per-variable learning-rate multiplier: each variable's
 * step is `learningRate * multiplier` times what the optimizer would do. (Scaling the step,
 * not the gradient: Adam divides the gradient's scale away, so a scaled gradient would change
 * nothing but the epsilon's weight.) Variables with multiplier 0 should not be given at all.
 *
 * - sgd: `g += wd * w` (decay variables), `buf = momentum * buf + g`, `w -= lr * buf` (PyTorch).
 * - adam: `g += wd * w`, then Adam with bias correction (Kingma & Ba).
 * - adamw: `w -= lr * wd * w` (decoupled, Loshchilov & Hutter), then Adam on the plain gradient.
 *
 * Its state (the slots and the step counter) is what checkpoints save.
 */
export class LayerwiseOptimizer {
  readonly kind: OptimizerSpec['kind']
  /** Updates applied so far (Adam's t). */
  step = 0
  private readonly slots = new Map<string, tf.Variable[]>()
  private readonly beta1: number
  private readonly beta2: number
  private readonly epsilon: number
  private readonly momentum: number
  private readonly weightDecay: number

  constructor(
    spec: OptimizerSpec,
    readonly variables: readonly OptimizedVariable[]
  ) {
    this.kind = spec.kind
    this.beta1 = spec.beta1 ?? 0.9
    this.beta2 = spec.beta2 ?? 0.999
    this.epsilon = spec.epsilon ?? 1e-8
    this.momentum = spec.momentum ?? 0
    this.weightDecay = spec.weightDecay ?? 0
    const slotNames = this.slotNames()
    for (const v of variables) {
      this.slots.set(
        v.key,
        slotNames.map(() => tf.tidy(() => tf.variable(tf.zeros(v.variable.shape), false)))
      )
    }
  }

  /** Names of the per-variable state: Adam's moments, SGD's momentum buffer. */
  slotNames(): string[] {
    if (this.kind === 'sgd') return this.momentum > 0 ? ['momentum'] : []
    return ['m', 'v']
  }

  /**
   * Applies one update with base learning rate `learningRate`; `grads` keyed by tf variable
   * name. Memory: every new value is computed in its own
   * `tidy` and assigned at once, so besides a variable, its slots and its gradient only a few
   * temporaries of its size are alive at a time (fc1 at 224 is 411 MB a copy; keeping every
   * temporary of a step would not fit the 4 GiB wasm heap).
   */
  applyGradients(grads: tf.NamedTensorMap, learningRate: number): void {
    this.step++
    for (const v of this.variables) {
      const grad = grads[v.variable.name]
      if (grad === undefined) throw new Error(`no gradient for ${v.key}`)
      tf.tidy(() => this.update(v, grad, learningRate * v.multiplier))
    }
  }

  private update(v: OptimizedVariable, grad: tf.Tensor, lr: number): void {
    const t = this.step
    const w = v.variable
    const decay = v.decays ? this.weightDecay : 0
    const [s0, s1] = this.slots.get(v.key) ?? []
    const assign = (target: tf.Variable, value: () => tf.Tensor) => target.assign(tf.tidy(value))
    if (this.kind === 'sgd') {
      const g = decay > 0 ? tf.add(grad, tf.mul(w, decay)) : grad
      if (s0 !== undefined) assign(s0, () => tf.add(tf.mul(s0, this.momentum), g))
      assign(w, () => tf.sub(w, tf.mul(s0 ?? g, lr)))
      return
    }
    const g = this.kind === 'adam' && decay > 0 ? tf.add(grad, tf.mul(w, decay)) : grad
    assign(s0, () => tf.add(tf.mul(s0, this.beta1), tf.mul(g, 1 - this.beta1)))
    assign(s1, () => tf.add(tf.mul(s1, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)))
    const stepSize = (lr * Math.sqrt(1 - Math.pow(this.beta2, t))) / (1 - Math.pow(this.beta1, t))
    // PyTorch's form: lr * m_hat / (sqrt(v_hat) + eps) with eps scaled into the uncorrected v.
    const eps = this.epsilon * Math.sqrt(1 - Math.pow(this.beta2, t))
    const change = tf.tidy(() => tf.mul(tf.div(s0, tf.add(tf.sqrt(s1), eps)), stepSize))
    assign(w, () => tf.sub(this.kind === 'adamw' && decay > 0 ? tf.mul(w, 1 - lr * decay) : w, change))
  }

  /** Every slot as `<key>/<slot>` -> variable, for checkpoints. */
  stateVariables(): { name: string; variable: tf.Variable }[] {
    const names = this.slotNames()
    return this.variables.flatMap((v) => (this.slots.get(v.key) ?? []).map((variable, i) => ({ name: `${v.key}/${names[i]}`, variable })))
  }

  dispose(): void {
    for (const slots of this.slots.values()) tf.dispose(slots)
    this.slots.clear()
  }
}

// ---------------------------------------------------------------- model

interface ModelVariable {
  key: string
  layer: tf.layers.Layer
  variable: tf.LayerVariable
  kind: string
}

/** Every weight of the model as `<layer>/<kernel|bias|v|g>`, in layer order. */
export function modelVariables(model: tf.LayersModel): ModelVariable[] {
  return model.layers.flatMap((layer) =>
    layer.weights.map((variable) => {
      const kind = variable.originalName.split('/').pop() ?? variable.originalName
      return { key: `${layer.name}/${kind}`, layer, variable, kind }
    })
  )
}

function vggOptions(spec: TrainerSpec): Omit<VggOptions, 'weights'> {
  const m = spec.model
  return {
    depth: m.depth,
    inputSize: m.inputSize,
    numClasses: m.numClasses,
    fcWidth: m.fcWidth,
    dropout: m.dropout,
    weightNorm: new Set(m.weightNorm),
    trainable: new Set(m.trainable)
  }
}

/**
 * Gives every layer in `layers` seeded kernels and zero biases (buildVgg's own initializers are
 * unseeded): He-uniform for the ReLU layers (convs, fc1, fc2), Glorot-uniform for the linear
 * `predictions`. He keeps the activations' scale through a VGG without batch norm; with Glorot
 * everywhere a random VGG11's features come out ~100x smaller than its input and barely vary
 * between images. A WN layer gets v = w, g = ||w||, as a fresh WN layer would.
 */
export function seededInit(model: tf.LayersModel, layers: readonly string[], seed: number): void {
  layers.forEach((name) => {
    const layer = model.getLayer(name)
    const layerSeed = deriveSeed(seed, 0x1a, model.layers.indexOf(layer))
    tf.tidy(() => {
      const kernelShape = isWeightNormLayer(layer) ? layer.vParam.shape : layer.getWeights()[0].shape
      const initializer = name === 'predictions' ? tf.initializers.glorotUniform({ seed: layerSeed }) : tf.initializers.heUniform({ seed: layerSeed })
      const kernel = initializer.apply(kernelShape as number[], 'float32')
      const bias = tf.zeros([kernelShape[kernelShape.length - 1] ?? 1])
      if (isWeightNormLayer(layer)) layer.setFromPlain(kernel, bias)
      else layer.setWeights([kernel, bias])
    })
  })
}

function weightNormStats(model: tf.LayersModel): WeightNormStats[] {
  return model.layers.filter(isWeightNormLayer).map((layer: WeightNormLayer) => {
    const g = layer.gParam.read().dataSync() as Float32Array
    const norms = tf.tidy(() => channelNorm(layer.vParam.read()).dataSync() as Float32Array)
    let sum = 0
    let min = Infinity
    let max = -Infinity
    for (const x of g) {
      sum += x
      min = Math.min(min, x)
      max = Math.max(max, x)
    }
    const vNormMean = norms.reduce((a, b) => a + b, 0) / norms.length
    return { layer: layer.name, gMean: sum / g.length, gMin: min, gMax: max, vNormMean }
  })
}

/** The Dropout layers, whose seed is set before every step so masks are reproducible. */
function dropoutLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.filter((l) => l.getClassName() === 'Dropout')
}

function setDropoutSeeds(layers: readonly tf.layers.Layer[], seed: number, epoch: number, step: number): void {
  // tf.layers.Dropout passes its (private) `seed` to tf.dropout on every call; a fixed seed
  // would repeat one mask every step, so each step gets its own.
  layers.forEach((layer, i) => Reflect.set(layer, 'seed', deriveSeed(seed, 0xd0, epoch, step, i)))
}

// ---------------------------------------------------------------- loss and metrics

/** Class-weighted mean softmax cross-entropy: sum(w_i * ce_i) / sum(w_i), w_i = weight of i's class. */
export function weightedCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, weights: tf.Tensor1D | null): tf.Scalar {
  return tf.tidy(() => {
    const numClasses = logits.shape[1]
    const ce = tf.neg(tf.sum(tf.mul(tf.oneHot(labels, numClasses), tf.logSoftmax(logits)), 1))
    if (weights === null) return tf.mean(ce) as tf.Scalar
    const w = tf.gather(weights, labels)
    return tf.div(tf.sum(tf.mul(ce, w)), tf.sum(w)) as tf.Scalar
  })
}

function correctCount(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32')) as tf.Scalar)
}

function isBetter(metric: EarlyStoppingSpec['metric'] | 'train_loss', a: EpochMetrics, b: EpochMetrics): boolean {
  if (metric === 'val_accuracy') return (a.valAccuracy ?? -Infinity) > (b.valAccuracy ?? -Infinity)
  if (metric === 'val_loss') return (a.valLoss ?? Infinity) < (b.valLoss ?? Infinity)
  return a.trainLoss < b.trainLoss
}

/** The best epoch of a history by a metric (earliest on ties), or null for an empty history. */
export function bestEpochOf(history: readonly EpochMetrics[], metric: EarlyStoppingSpec['metric'] | 'train_loss'): EpochMetrics | null {
  let best: EpochMetrics | null = null
  for (const m of history) if (best === null || isBetter(metric, m, best)) best = m
  return best
}

function selectionMetric(spec: TrainerSpec, hasValidation: boolean): EarlyStoppingSpec['metric'] | 'train_loss' {
  return spec.earlyStopping?.metric ?? (hasValidation ? 'val_loss' : 'train_loss')
}

// ---------------------------------------------------------------- the run

function describeSkip(skip: { layer: string; reason: string }[]): string[] {
  return skip.map((s) => `${s.layer} starts fresh (seeded init): ${s.reason}`)
}

async function restoreModelVariables(model: tf.LayersModel, checkpoint: LoadedCheckpoint): Promise<void> {
  for (const v of modelVariables(model)) {
    const t = checkpoint.tensors.get(`model/${v.key}`)
    if (t === undefined) throw new Error(`checkpoint ${checkpoint.path} has no ${v.key}: it was written for another model configuration`)
    const shape = v.variable.shape as number[]
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`checkpoint ${checkpoint.path}: ${v.key} has shape [${t.shape.join(', ')}], the model [${shape.join(', ')}]`)
    }
    tf.tidy(() => {
      v.variable.write(tf.tensor(t.data, t.shape, 'float32'))
    })
  }
}

function restoreOptimizer(optimizer: LayerwiseOptimizer, checkpoint: LoadedCheckpoint): void {
  if (checkpoint.state.optimizer.kind !== optimizer.kind) {
    throw new Error(`checkpoint ${checkpoint.path} was written with optimizer ${checkpoint.state.optimizer.kind}, the spec asks for ${optimizer.kind}`)
  }
  for (const slot of optimizer.stateVariables()) {
    const t = checkpoint.tensors.get(`optimizer/${slot.name}`)
    if (t === undefined) throw new Error(`checkpoint ${checkpoint.path} has no optimizer state ${slot.name} (were other layers trained?)`)
    tf.tidy(() => slot.variable.assign(tf.tensor(t.data, t.shape, 'float32')))
  }
  optimizer.step = checkpoint.state.optimizer.step
}

function snapshotTensors(model: tf.LayersModel, optimizer: LayerwiseOptimizer): CheckpointTensor[] {
  const fromModel = modelVariables(model).map((v) => ({ name: `model/${v.key}`, shape: [...(v.variable.shape as number[])], data: v.variable.read().dataSync() as Float32Array }))
  const fromOptimizer = optimizer.stateVariables().map((s) => ({ name: `optimizer/${s.name}`, shape: [...s.variable.shape], data: s.variable.dataSync() as Float32Array }))
  return [...fromModel, ...fromOptimizer]
}

/**
 * A step runs synchronously, so without this a pause or cancel arriving over IPC (an event-loop
 * task) would wait until the run ends: awaiting a resolved promise only drains microtasks.
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

const noHooks: TrainerHooks = { onProgress: () => {}, shouldStop: () => false, waitWhilePaused: async () => {} }

/**
 * Trains as the spec says, reporting through `hooks.onProgress`. Resolves when the run ends
 * (completed, stopped early or cancelled); rejects on an error, after sending `failed`.
 */
export async function train(input: TrainerSpecInput | TrainerSpec, hooks: Partial<TrainerHooks> = {}): Promise<TrainResult> {
  const h: TrainerHooks = { ...noHooks, ...hooks }
  try {
    return await run(parseTrainerSpec(input), h)
  } catch (error) {
    h.onProgress({ type: 'failed', message: error instanceof Error ? error.message : String(error) })
    throw error
  }
}

async function run(spec: TrainerSpec, hooks: TrainerHooks): Promise<TrainResult> {
  const emit = hooks.onProgress
  const selection = await selectBackend({ forced: spec.backend })
  await removeUnfinishedCheckpoints(spec.checkpointDir)
  const warnings: string[] = []

  const resume = spec.resumeFrom === undefined ? null : await loadCheckpoint(spec.resumeFrom)
  let loaded: LoadedVggWeights | null = null
  if (spec.weights !== null && resume === null) {
    emit({ type: 'preparing', stage: 'loading-weights', done: 0, total: 1 })
    loaded = await loadVggWeights(spec.weights.path, { depth: spec.model.depth })
    warnings.push(...loaded.warnings)
    emit({ type: 'preparing', stage: 'loading-weights', done: 1, total: 1 })
  }
  const preprocessing: Preprocessing = spec.preprocessing ?? resume?.state.preprocessing ?? loaded?.preprocessing ?? TORCHVISION_PREPROCESSING
  if (spec.preprocessing !== undefined && loaded !== null && spec.preprocessing.kind !== loaded.preprocessing.kind) {
    warnings.push(`preprocessing ${spec.preprocessing.kind} differs from the weights' own (${loaded.preprocessing.kind})`)
  }

  const options = vggOptions(spec)
  const model = buildVgg({ ...options, weights: loaded?.weights })
  let optimizer: LayerwiseOptimizer | null = null
  try {
    const allWeighted = [...planVgg(options).kernelShapes.keys()]
    if (resume === null) {
      const fresh = loaded === null ? allWeighted : planWeightLoading(planVgg(options), loaded.weights).skip.map((s) => s.layer)
      if (loaded !== null) warnings.push(...describeSkip(planWeightLoading(planVgg(options), loaded.weights).skip))
      seededInit(model, fresh, spec.seed)
    }
    loaded = null // the model holds the weights now; let the arrays go

    const trainItems = spec.data.items.filter((i) => i.split === 'train')
    const valItems = spec.data.items.filter((i) => i.split === 'validation')
    const total = spec.data.items.length
    const progress = (offset: number) => (done: number) => emit({ type: 'preparing', stage: 'decoding', done: offset + done, total })
    const trainSet = await decodeImageSet(trainItems, spec.model.inputSize, preprocessing.channelOrder, progress(0))
    const valSet = await decodeImageSet(valItems, spec.model.inputSize, preprocessing.channelOrder, progress(trainItems.length))

    const weightsPerClass = classWeights(spec.classWeights, Array.from(trainSet.labels), spec.model.numClasses)
    const optimized: OptimizedVariable[] = modelVariables(model)
      .filter((v) => v.variable.trainable && v.layer.trainable)
      .map((v) => ({
        key: v.key,
        layer: v.layer.name,
        // A LayerVariable's value is the tf.Variable that gradients are taken against.
        variable: v.variable.read() as tf.Variable,
        multiplier: spec.model.lrMultipliers[v.layer.name] ?? 1,
        decays: v.kind === 'kernel' || v.kind === 'v'
      }))
      .filter((v) => v.multiplier > 0)
    if (optimized.length === 0) throw new Error('nothing to train: every trainable layer has learning-rate multiplier 0')
    optimizer = new LayerwiseOptimizer(spec.optimizer, optimized)
    const optimizedLayers = new Set(optimized.map((v) => v.layer))
    const split = splitAtFrozenPrefix(model, (layer) => optimizedLayers.has(layer.name))
    const featureShape = prefixOutputShape(model, split)
    const cachePlan = planFeatureCache({
      mode: spec.featureCache,
      boundary: split.boundary,
      featureShape,
      images: trainSet.count + valSet.count,
      augmentation: spec.augmentation
    })
    const cache = async (set: ImageSet, offset: number): Promise<InputSource> => {
      if (!cachePlan.cached) return { set, store: null }
      let done = offset
      const total = (trainSet.count + valSet.count) * cachePlan.variants
      const store = await buildFeatureStore(set, split.prefix, featureShape, cachePlan.variants, preprocessing, {
        chunk: spec.batchSize,
        yieldToEventLoop,
        shouldStop: hooks.shouldStop,
        onChunk: (n) => {
          done += n
          emit({ type: 'preparing', stage: 'caching-features', done, total })
        }
      })
      return { set, store }
    }
    const trainSource = await cache(trainSet, 0)
    const valSource = await cache(valSet, trainSet.count * cachePlan.variants)

    const history: EpochMetrics[] = []
    let startEpoch = 0
    if (resume !== null) {
      await restoreModelVariables(model, resume)
      restoreOptimizer(optimizer, resume)
      history.push(...resume.state.history)
      startEpoch = resume.state.epoch
    }

    const stepsPerEpoch = Math.ceil(trainSet.count / spec.batchSize)
    if (resume !== null && resume.state.stepsPerEpoch !== stepsPerEpoch) {
      throw new Error(`checkpoint ${resume.path} was written with ${resume.state.stepsPerEpoch} steps per epoch, this spec gives ${stepsPerEpoch} (other data or batch size)`)
    }
    const trainableParams = model.trainableWeights.reduce((n, w) => n + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0)
    emit({
      type: 'started',
      backend: selection.backend,
      skippedBackends: selection.skipped,
      params: model.countParams(),
      trainableParams,
      stepsPerEpoch,
      trainImages: trainSet.count,
      validationImages: valSet.count,
      startEpoch,
      warnings,
      featureCache: describeCache(cachePlan)
    })

    const inputs = new NetworkInputs(split, preprocessing, spec.augmentation)
    const loop = new EpochLoop(spec, model, optimizer, { train: trainSource, validation: valSource, inputs }, weightsPerClass, preprocessing, stepsPerEpoch, hooks)
    try {
      const outcome = await loop.run(startEpoch, history, selection.backend)
      return { ...outcome, model }
    } finally {
      loop.dispose()
    }
  } catch (error) {
    model.dispose()
    throw error
  } finally {
    optimizer?.dispose()
  }
}

function describeCache(plan: FeatureCachePlan): { cached: boolean; boundary: string | null; reason: string } {
  return { cached: plan.cached, boundary: plan.boundary, reason: plan.reason }
}

/** What the epoch loop feeds the network from. */
interface LoopData {
  train: InputSource
  validation: InputSource
  inputs: NetworkInputs
}

class EpochLoop {
  private readonly classWeights: tf.Tensor1D | null
  private readonly dropouts: tf.layers.Layer[]
  private readonly variables: tf.Variable[]
  private readonly checkpoints: string[] = []
  private readonly trainSet: ImageSet
  private readonly valSet: ImageSet

  constructor(
    private readonly spec: TrainerSpec,
    private readonly model: tf.LayersModel,
    private readonly optimizer: LayerwiseOptimizer,
    private readonly data: LoopData,
    weightsPerClass: number[],
    private readonly preprocessing: Preprocessing,
    private readonly stepsPerEpoch: number,
    private readonly hooks: TrainerHooks
  ) {
    this.classWeights = spec.classWeights === 'none' ? null : tf.tensor1d(weightsPerClass)
    this.dropouts = dropoutLayers(model)
    this.variables = optimizer.variables.map((v) => v.variable)
    this.trainSet = data.train.set
    this.valSet = data.validation.set
  }

  dispose(): void {
    this.classWeights?.dispose()
  }

  private learningRate(globalStep: number): number {
    return learningRateAt(this.spec.schedule, { baseLearningRate: this.spec.optimizer.learningRate, stepsPerEpoch: this.stepsPerEpoch, epochs: this.spec.epochs }, globalStep)
  }

  /** One optimizer step on a batch; returns the loss and the number of correct predictions. */
  private trainStep(indices: Int32Array, epoch: number, step: number, learningRate: number): { loss: number; correct: number } {
    setDropoutSeeds(this.dropouts, this.spec.seed, epoch, step)
    const { inputs } = this.data
    const [loss, correct] = tf.tidy(() => {
      // The frozen prefix (or the cache) runs here, outside the gradient tape.
      const x = inputs.training(this.data.train, indices, deriveSeed(this.spec.seed, 0xa9, epoch, step))
      const labels = tf.tensor1d(batchLabels(this.trainSet, indices), 'int32')
      let correctCountTensor: tf.Scalar | null = null
      const { value, grads } = tf.variableGrads(() => {
        const logits = inputs.logits(x, true)
        correctCountTensor = tf.keep(correctCount(logits, labels))
        return weightedCrossEntropy(logits, labels, this.classWeights)
      }, this.variables)
      this.optimizer.applyGradients(grads, learningRate)
      const c = correctCountTensor as tf.Scalar | null
      if (c === null) throw new Error('the forward pass did not run')
      return [value, c]
    })
    try {
      return { loss: loss.dataSync()[0], correct: correct.dataSync()[0] }
    } finally {
      tf.dispose([loss, correct])
    }
  }

  /** Unweighted loss and accuracy over the validation set, or null when it is empty or the run was cancelled meanwhile. */
  private async validate(): Promise<{ loss: number; accuracy: number } | 'cancelled' | null> {
    if (this.valSet.count === 0) return null
    let lossSum = 0
    let correct = 0
    const order = Int32Array.from({ length: this.valSet.count }, (_, i) => i)
    for (const indices of batchSlices(order, this.spec.batchSize)) {
      await yieldToEventLoop()
      await this.hooks.waitWhilePaused()
      if (this.hooks.shouldStop()) return 'cancelled'
      const [l, c] = tf.tidy(() => {
        const x = this.data.inputs.plain(this.data.validation, indices)
        const labels = tf.tensor1d(batchLabels(this.valSet, indices), 'int32')
        const logits = this.data.inputs.logits(x, false)
        return [tf.mul(weightedCrossEntropy(logits, labels, null), indices.length), correctCount(logits, labels)]
      })
      lossSum += l.dataSync()[0]
      correct += c.dataSync()[0]
      tf.dispose([l, c])
    }
    return { loss: lossSum / this.valSet.count, accuracy: correct / this.valSet.count }
  }

  private checkpointState(epoch: number, history: EpochMetrics[]): CheckpointState {
    return {
      runId: this.spec.runId,
      epoch,
      globalStep: epoch * this.stepsPerEpoch,
      seed: this.spec.seed,
      stepsPerEpoch: this.stepsPerEpoch,
      model: this.spec.model,
      preprocessing: this.preprocessing,
      classNames: this.spec.data.classNames,
      optimizer: { kind: this.optimizer.kind, step: this.optimizer.step },
      history: [...history]
    }
  }

  async run(startEpoch: number, history: EpochMetrics[], backend: BackendName): Promise<Omit<TrainResult, 'model'>> {
    const { spec, hooks } = this
    const emit = hooks.onProgress
    const metric = selectionMetric(spec, this.valSet.count > 0)
    let status: TrainerStatus = 'completed'
    for (let epoch = startEpoch + 1; epoch <= spec.epochs && status === 'completed'; epoch++) {
      const started = performance.now()
      const batches = batchSlices(epochOrder(this.trainSet.count, spec.seed, epoch), spec.batchSize)
      let lossSum = 0
      let correct = 0
      let seen = 0
      // Throughput counts the steps' own time, not validation or checkpoint writing between them.
      let stepSecondsSinceReport = 0
      let imagesSinceReport = 0
      let learningRate = 0
      for (let i = 0; i < batches.length; i++) {
        await yieldToEventLoop()
        await hooks.waitWhilePaused()
        if (hooks.shouldStop()) {
          status = 'cancelled'
          break
        }
        const step = i + 1
        const globalStep = (epoch - 1) * this.stepsPerEpoch + step
        learningRate = this.learningRate(globalStep - 1)
        const stepStart = performance.now()
        const result = this.trainStep(batches[i], epoch, step, learningRate)
        stepSecondsSinceReport += (performance.now() - stepStart) / 1000
        if (!Number.isFinite(result.loss)) throw new Error(`the loss became ${result.loss} at epoch ${epoch}, step ${step}: lower the learning rate`)
        const n = batches[i].length
        lossSum += result.loss * n
        correct += result.correct
        seen += n
        imagesSinceReport += n
        if (step % spec.stepMetricsEvery === 0) {
          const imagesPerSec = imagesSinceReport / Math.max(1e-6, stepSecondsSinceReport)
          emit({ type: 'step', epoch, step, globalStep, loss: result.loss, accuracy: result.correct / n, learningRate, imagesPerSec })
          stepSecondsSinceReport = 0
          imagesSinceReport = 0
        }
      }
      if (status === 'cancelled') break
      const val = await this.validate()
      if (val === 'cancelled') {
        status = 'cancelled'
        break
      }
      const metrics: EpochMetrics = { epoch, trainLoss: lossSum / seen, trainAccuracy: correct / seen, valLoss: val?.loss ?? null, valAccuracy: val?.accuracy ?? null }
      history.push(metrics)
      emit({ type: 'epoch', ...metrics, seconds: (performance.now() - started) / 1000, learningRate, wn: weightNormStats(this.model) })

      const written = await writeCheckpoint(spec.checkpointDir, checkpointName(epoch), this.checkpointState(epoch, history), snapshotTensors(this.model, this.optimizer))
      this.checkpoints.push(written.path)
      emit({ type: 'checkpoint', epoch, step: epoch * this.stepsPerEpoch, path: written.path, bytes: written.bytes })
      const best = bestEpochOf(history, metric)
      if (spec.checkpointRetention === 'last-and-best') await this.prune(written.path, best?.epoch ?? epoch)
      if (spec.earlyStopping !== null && best !== null && epoch - best.epoch >= spec.earlyStopping.patience && epoch < spec.epochs) status = 'stopped-early'
    }

    const best = bestEpochOf(history, metric)
    const last = history.length > 0 ? history[history.length - 1] : null
    let restoredBest = false
    let finalCheckpoint: string | null = null
    if (status !== 'cancelled' && last !== null) {
      finalCheckpoint = join(spec.checkpointDir, checkpointName(last.epoch))
      if (spec.earlyStopping !== null && best !== null && best.epoch !== last.epoch) {
        finalCheckpoint = join(spec.checkpointDir, checkpointName(best.epoch))
        await restoreModelVariables(this.model, await loadCheckpoint(finalCheckpoint, (name) => name.startsWith('model/')))
        restoredBest = true
      }
    }
    const outcome = {
      status,
      bestEpoch: best?.epoch ?? 0,
      history,
      restoredBest,
      finalCheckpoint,
      backend
    }
    emit({
      type: 'finished',
      status,
      bestEpoch: outcome.bestEpoch,
      metrics: best,
      lastEpoch: last,
      restoredBest,
      finalCheckpoint,
      epochsCompleted: history.length
    })
    return outcome
  }

  /** Keeps the newest and the best checkpoint of this run; deletes the others it wrote. */
  private async prune(newest: string, bestEpoch: number): Promise<void> {
    const keep = new Set([newest, join(this.spec.checkpointDir, checkpointName(bestEpoch))])
    for (const path of this.checkpoints.filter((p) => !keep.has(p))) {
      await removeCheckpoint(path)
      this.checkpoints.splice(this.checkpoints.indexOf(path), 1)
    }
  }
}
