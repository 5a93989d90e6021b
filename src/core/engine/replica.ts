/**
 * One replica of the model being trained: the model built from the spec (weights loaded or
 * seeded, or restored from a checkpoint), its optimizer, and what it is fed (`NetworkInputs`).
 * A run has one replica in its process and, when it trains data-parallel (data-parallel.ts),
 * one more in each worker thread; every replica starts from the same weights and applies the
 * same averaged gradients, so they stay identical.
 */
import * as tf from '@tensorflow/tfjs'
import { buildVgg, planVgg, planWeightLoading, type VggOptions } from '../model/vgg'
import { isWeightNormLayer } from '../model/weight-norm'
import type { LoadedVggWeights } from '../weights/load-weights'
import type { LoadedCheckpoint } from './checkpoint'
import { batchLabels, deriveSeed } from './data-loader'
import { NetworkInputs, splitAtFrozenPrefix, type InputSource, type ModelSplit } from './feature-cache'
import { LayerwiseOptimizer, type OptimizedVariable } from './optimizer'
import type { TrainerSpec } from './trainer-spec'

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

/** The Dropout layers, whose seed is set before every step so masks are reproducible. */
function dropoutLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.filter((l) => l.getClassName() === 'Dropout')
}

function setDropoutSeeds(layers: readonly tf.layers.Layer[], seed: number, epoch: number, step: number): void {
  // tf.layers.Dropout passes its (private) `seed` to tf.dropout on every call; a fixed seed
  // would repeat one mask every step, so each step gets its own.
  layers.forEach((layer, i) => Reflect.set(layer, 'seed', deriveSeed(seed, 0xd0, epoch, step, i)))
}

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

function describeSkip(skip: { layer: string; reason: string }[]): string[] {
  return skip.map((s) => `${s.layer} starts fresh (seeded init): ${s.reason}`)
}

export function restoreModelVariables(model: tf.LayersModel, checkpoint: LoadedCheckpoint): void {
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

/** The model of a run, built as the spec says; `warnings` name the layers that start fresh. */
export function buildTrainingModel(spec: TrainerSpec, loaded: LoadedVggWeights | null, resuming: boolean): { model: tf.LayersModel; warnings: string[] } {
  const options = vggOptions(spec)
  const model = buildVgg({ ...options, weights: loaded?.weights })
  const warnings: string[] = []
  if (!resuming) {
    try {
      const plan = planVgg(options)
      const skip = loaded === null ? null : planWeightLoading(plan, loaded.weights).skip
      if (skip !== null) warnings.push(...describeSkip(skip))
      seededInit(model, skip === null ? [...plan.kernelShapes.keys()] : skip.map((s) => s.layer), spec.seed)
    } catch (error) {
      model.dispose()
      throw error
    }
  }
  return { model, warnings }
}

/** The variables the optimizer updates: trainable ones of trainable layers with a multiplier above 0. */
export function optimizedVariables(spec: TrainerSpec, model: tf.LayersModel): OptimizedVariable[] {
  const optimized = modelVariables(model)
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
  return optimized
}

/** The gradients of one replica's share of a batch (tensors the caller disposes). */
export interface ReplicaGradients {
  grads: tf.NamedTensorMap
  loss: tf.Scalar
  correct: tf.Scalar
  /** Sum of the share's class weights (its image count without class weights): how much its loss counts. */
  weight: number
}

/** The seed replica `index` draws its dropout masks and augmentation from (replica 0: the run's own). */
export function replicaSeed(seed: number, index: number): number {
  return index === 0 ? seed : deriveSeed(seed, 0x7e, index)
}

export class Replica {
  readonly optimizer: LayerwiseOptimizer
  readonly split: ModelSplit
  private readonly dropouts: tf.layers.Layer[]
  private readonly variables: tf.Variable[]
  private readonly classWeights: tf.Tensor1D | null
  private readonly seed: number
  inputs: NetworkInputs | null = null
  train: InputSource | null = null
  validation: InputSource | null = null

  constructor(
    readonly spec: TrainerSpec,
    readonly model: tf.LayersModel,
    private readonly weightsPerClass: readonly number[] | null,
    index: number
  ) {
    this.optimizer = new LayerwiseOptimizer(spec.optimizer, optimizedVariables(spec, model))
    const optimizedLayers = new Set(this.optimizer.variables.map((v) => v.layer))
    this.split = splitAtFrozenPrefix(model, (layer) => optimizedLayers.has(layer.name))
    this.dropouts = dropoutLayers(model)
    this.variables = this.optimizer.variables.map((v) => v.variable)
    this.classWeights = weightsPerClass === null ? null : tf.tensor1d([...weightsPerClass])
    this.seed = replicaSeed(spec.seed, index)
  }

  /** Sets what the replica trains and validates on (a worker replica only trains). */
  feed(inputs: NetworkInputs, train: InputSource, validation: InputSource | null): void {
    this.inputs = inputs
    this.train = train
    this.validation = validation
  }

  restore(checkpoint: LoadedCheckpoint): void {
    restoreModelVariables(this.model, checkpoint)
    restoreOptimizer(this.optimizer, checkpoint)
  }

  private fed(): { inputs: NetworkInputs; train: InputSource } {
    if (this.inputs === null || this.train === null) throw new Error('the replica has no data yet')
    return { inputs: this.inputs, train: this.train }
  }

  /** Loss and gradients on the training images at `indices` (augmented, dropout seeded for the step). */
  gradients(indices: Int32Array, epoch: number, step: number): ReplicaGradients {
    const { inputs, train } = this.fed()
    setDropoutSeeds(this.dropouts, this.seed, epoch, step)
    const labelValues = batchLabels(train.set, indices)
    const weight = this.weightsPerClass === null ? indices.length : labelValues.reduce((sum, label) => sum + (this.weightsPerClass?.[label] ?? 0), 0)
    return tf.tidy(() => {
      // The frozen prefix (or the cache) runs here, outside the gradient tape.
      const x = inputs.training(train, indices, deriveSeed(this.seed, 0xa9, epoch, step))
      const labels = tf.tensor1d(labelValues, 'int32')
      let correct: tf.Scalar | null = null
      const { value, grads } = tf.variableGrads(() => {
        const logits = inputs.logits(x, true)
        correct = tf.keep(correctCount(logits, labels))
        return weightedCrossEntropy(logits, labels, this.classWeights)
      }, this.variables)
      if (correct === null) throw new Error('the forward pass did not run')
      return { grads, loss: value, correct, weight }
    })
  }

  /** One optimizer step on a batch, alone; returns the loss and the number of correct predictions. */
  trainStep(indices: Int32Array, epoch: number, step: number, learningRate: number): { loss: number; correct: number } {
    const g = this.gradients(indices, epoch, step)
    try {
      this.optimizer.applyGradients(g.grads, learningRate)
      return { loss: g.loss.dataSync()[0], correct: g.correct.dataSync()[0] }
    } finally {
      disposeGradients(g)
    }
  }

  /** Unweighted summed loss and correct count of the validation images at `indices`. */
  evaluate(indices: Int32Array): { lossSum: number; correct: number } {
    const { inputs } = this.fed()
    const validation = this.validation
    if (validation === null) throw new Error('the replica has no validation data')
    const [l, c] = tf.tidy(() => {
      const x = inputs.plain(validation, indices)
      const labels = tf.tensor1d(batchLabels(validation.set, indices), 'int32')
      const logits = inputs.logits(x, false)
      return [tf.mul(weightedCrossEntropy(logits, labels, null), indices.length), correctCount(logits, labels)]
    })
    try {
      return { lossSum: l.dataSync()[0], correct: c.dataSync()[0] }
    } finally {
      tf.dispose([l, c])
    }
  }

  dispose(): void {
    this.optimizer.dispose()
    this.classWeights?.dispose()
  }
}

export function disposeGradients(g: ReplicaGradients): void {
  tf.dispose([...Object.values(g.grads), g.loss, g.correct])
}
