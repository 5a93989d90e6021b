/**
 * VGG topologies (Simonyan & Zisserman 2015, configurations A/B/D/E = VGG11/13/16/19) and a
 * builder for TF.js models with Keras layer names, optional weight normalization per layer,
 * frozen layers, and pretrained weights.
 *
 * The model outputs logits: `predictions` has a linear activation, so training can use a
 * numerically stable softmax cross-entropy on the logits (`tf.losses.softmaxCrossEntropy`) and
 * inference applies `tf.softmax` itself. (Keras' VGG16 ends with a softmax instead.)
 */
import * as tf from '@tensorflow/tfjs'
import type { LayerWeights, VggWeights } from '../weights/vgg-weights'
import { VGG_BLOCK_CONVS, VGG_BLOCK_WIDTHS, type VggDepth } from '../weights/vgg-spec'
import { isWeightNormLayer, WeightNormConv2D, WeightNormDense } from './weight-norm'

export type { VggDepth }

export interface VggBlock {
  /** Output channels of every conv in the block. */
  filters: number
  /** Number of 3x3 convs in the block, named `block{b}_conv1..n`. */
  convs: number
}

export interface VggConfig {
  depth: VggDepth
  /** The configuration's letter in the paper. */
  letter: 'A' | 'B' | 'D' | 'E'
  /** Five blocks, each followed by a 2x2 max pool (`block{b}_pool`). */
  blocks: readonly VggBlock[]
}

function blocks(depth: VggDepth): readonly VggBlock[] {
  return VGG_BLOCK_CONVS[depth].map((convs, i) => ({ filters: VGG_BLOCK_WIDTHS[i], convs }))
}

export const VGG_CONFIGS: Readonly<Record<VggDepth, VggConfig>> = {
  11: { depth: 11, letter: 'A', blocks: blocks(11) },
  13: { depth: 13, letter: 'B', blocks: blocks(13) },
  16: { depth: 16, letter: 'D', blocks: blocks(16) },
  19: { depth: 19, letter: 'E', blocks: blocks(19) }
}

/** Input size of the original network; only there do the pretrained fc1/fc2 apply. */
export const PRETRAINED_INPUT_SIZE = 224
/** Width of fc1/fc2 at 224 (the pretrained classifier). */
export const FULL_FC_WIDTH = 4096
/** Default width of the rebuilt fc1/fc2 at smaller input sizes. */
export const SMALL_FC_WIDTH = 512
export const CLASSIFIER_LAYER_NAMES = ['fc1', 'fc2', 'predictions'] as const

/** Conv layer names of a VGG depth, in order: `block1_conv1` ... */
export function vggConvLayerNames(depth: VggDepth): string[] {
  return VGG_CONFIGS[depth].blocks.flatMap((b, i) => Array.from({ length: b.convs }, (_, j) => `block${i + 1}_conv${j + 1}`))
}

/** Names of every layer with weights, in order: the convs then `fc1`, `fc2`, `predictions`. */
export function vggWeightLayerNames(depth: VggDepth): string[] {
  return [...vggConvLayerNames(depth), ...CLASSIFIER_LAYER_NAMES]
}

export type LayerSelector = ReadonlySet<string> | ((layerName: string) => boolean)

export interface VggOptions {
  depth: VggDepth
  /** Square input side: a multiple of 32 from 32 to 224. */
  inputSize: number
  numClasses: number
  /** Layers built as WN layers (default: none). Pretrained weights are converted exactly. */
  weightNorm?: LayerSelector
  /** Layers that train; all others are frozen (default: all train). */
  trainable?: LayerSelector
  /** Dropout after fc1 and after fc2 (default 0.5 as in VGG; 0 leaves the layers out). */
  dropout?: number
  /** fc1/fc2 width (default 4096 at 224, 512 below). */
  fcWidth?: number
  /**
   * Weights to start from (see `planWeightLoading`). Every conv must be present. Pretrained
   * `fc1`/`fc2` load only at inputSize 224 (fcWidth 4096), where their shapes fit; at smaller
   * sizes they are skipped and the classifier is fresh. `predictions` is new unless its shape
   * fits (pretrained: numClasses 1000 at 224). Layers given WN are converted exactly.
   */
  weights?: VggWeights
}

export interface VggPlan {
  depth: VggDepth
  inputSize: number
  numClasses: number
  fcWidth: number
  dropout: number
  /** Final feature map side: inputSize / 32. */
  featureSize: number
  /** Layer name -> expected kernel shape, for every layer with weights. */
  kernelShapes: Map<string, number[]>
}

export function validateInputSize(inputSize: number): void {
  if (!Number.isInteger(inputSize) || inputSize % 32 !== 0 || inputSize < 32 || inputSize > 224) {
    throw new Error(`inputSize must be a multiple of 32 from 32 to 224 (e.g. 32, 64, 224), got ${inputSize}`)
  }
}

/** Checks the options and works out every layer's kernel shape. */
export function planVgg(options: VggOptions): VggPlan {
  const { depth, inputSize, numClasses } = options
  if (!(depth in VGG_CONFIGS)) throw new Error(`depth must be one of 11, 13, 16, 19, got ${String(depth)}`)
  validateInputSize(inputSize)
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new Error(`numClasses must be a positive integer, got ${numClasses}`)
  const dropout = options.dropout ?? 0.5
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`dropout must be in [0, 1), got ${dropout}`)
  const fcWidth = options.fcWidth ?? (inputSize === PRETRAINED_INPUT_SIZE ? FULL_FC_WIDTH : SMALL_FC_WIDTH)
  if (!Number.isInteger(fcWidth) || fcWidth < 1) throw new Error(`fcWidth must be a positive integer, got ${fcWidth}`)

  const kernelShapes = new Map<string, number[]>()
  let inChannels = 3
  VGG_CONFIGS[depth].blocks.forEach((block, b) => {
    for (let c = 1; c <= block.convs; c++) {
      kernelShapes.set(`block${b + 1}_conv${c}`, [3, 3, inChannels, block.filters])
      inChannels = block.filters
    }
  })
  const featureSize = inputSize / 32
  kernelShapes.set('fc1', [featureSize * featureSize * inChannels, fcWidth])
  kernelShapes.set('fc2', [fcWidth, fcWidth])
  kernelShapes.set('predictions', [fcWidth, numClasses])

  for (const [key, selector] of [
    ['weightNorm', options.weightNorm],
    ['trainable', options.trainable]
  ] as const) {
    if (selector instanceof Set) {
      const unknown = [...selector].filter((name) => !kernelShapes.has(name))
      if (unknown.length > 0) {
        throw new Error(`${key} names layers that VGG${depth} does not have: ${unknown.join(', ')}`)
      }
    }
  }
  return { depth, inputSize, numClasses, fcWidth, dropout, featureSize, kernelShapes }
}

function selects(selector: LayerSelector | undefined, name: string, fallback: boolean): boolean {
  if (selector === undefined) return fallback
  return typeof selector === 'function' ? selector(name) : selector.has(name)
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i])
}

/**
 * Which layers of `weights` a model built from `plan` takes, and which it skips (left freshly
 * initialized), with the reason. Every conv must be present with the right shape (else this
 * throws). A classifier layer (`fc1`, `fc2`, `predictions`) is taken only when its kernel shape
 * matches exactly and every classifier layer before it was taken: so ImageNet's fc1 (25088 x
 * 4096) never loads below 224 and the chain after it is rebuilt, and ImageNet's 1000-way
 * `predictions` never loads for another number of classes, while weights saved from a model of
 * the same configuration (a checkpoint) restore completely.
 */
export function planWeightLoading(
  plan: VggPlan,
  weights: VggWeights
): { load: string[]; skip: { layer: string; reason: string }[] } {
  const load: string[] = []
  const skip: { layer: string; reason: string }[] = []
  let classifierChain = true
  for (const [name, shape] of plan.kernelShapes) {
    const w = weights.get(name)
    const isConv = name.startsWith('block')
    if (w === undefined) {
      if (isConv) throw new Error(`weights have no ${name}, which VGG${plan.depth} needs`)
      skip.push({ layer: name, reason: 'not in the weights' })
      classifierChain = false
      continue
    }
    const matches = sameShape(w.kernelShape, shape)
    if (isConv && !matches) {
      throw new Error(`weights for ${name} have kernel shape [${w.kernelShape.join(', ')}], expected [${shape.join(', ')}]`)
    }
    if (!isConv && !classifierChain) {
      skip.push({ layer: name, reason: 'the classifier layer before it is new' })
      continue
    }
    if (!matches) {
      const reason =
        name === 'predictions'
          ? `new head: weights have ${w.kernelShape[w.kernelShape.length - 1]} classes, the model ${plan.numClasses}`
          : `kernel shape [${w.kernelShape.join(', ')}] does not fit inputSize ${plan.inputSize} (needs [${shape.join(', ')}])`
      skip.push({ layer: name, reason })
      classifierChain = false
      continue
    }
    const out = shape[shape.length - 1]
    const size = shape.reduce((a, b) => a * b, 1)
    if (w.kernel.length !== size || w.bias.length !== out) {
      throw new Error(`weights for ${name} have ${w.kernel.length} kernel / ${w.bias.length} bias values, expected ${size} / ${out}`)
    }
    load.push(name)
  }
  return { load, skip }
}

function setLayerWeights(layer: tf.layers.Layer, w: LayerWeights): void {
  tf.tidy(() => {
    const kernel = tf.tensor(w.kernel, w.kernelShape, 'float32')
    const bias = tf.tensor1d(w.bias, 'float32')
    if (isWeightNormLayer(layer)) layer.setFromPlain(kernel, bias)
    else layer.setWeights([kernel, bias])
  })
}

/**
 * Builds a VGG as a functional `tf.LayersModel`: input `[batch, s, s, 3]` float32 (NHWC,
 * already preprocessed for the weights), output `[batch, numClasses]` logits. Layers: the convs
 * (`block{b}_conv{n}`, 3x3 same, relu) with `block{b}_pool` after each block, `flatten` (HWC
 * order), `fc1` (relu), `fc1_dropout`, `fc2` (relu), `fc2_dropout`, `predictions` (linear).
 */
export function buildVgg(options: VggOptions): tf.LayersModel {
  const plan = planVgg(options)
  const loading = options.weights === undefined ? null : planWeightLoading(plan, options.weights)
  const willLoad = new Set(loading?.load ?? [])
  const layerArgs = (name: string) => ({
    name,
    trainable: selects(options.trainable, name, true),
    // Skip the random init of layers whose weights are about to be overwritten.
    kernelInitializer: willLoad.has(name) ? ('zeros' as const) : ('glorotUniform' as const)
  })
  const useWn = (name: string) => selects(options.weightNorm, name, false)
  const conv = (name: string, filters: number): tf.layers.Layer => {
    const args = { ...layerArgs(name), filters, kernelSize: 3, padding: 'same' as const, activation: 'relu' as const }
    return useWn(name) ? new WeightNormConv2D(args) : tf.layers.conv2d(args)
  }
  const dense = (name: string, units: number, activation: 'relu' | 'linear'): tf.layers.Layer => {
    const args = { ...layerArgs(name), units, activation }
    return useWn(name) ? new WeightNormDense(args) : tf.layers.dense(args)
  }

  const input = tf.input({ shape: [plan.inputSize, plan.inputSize, 3], dtype: 'float32', name: 'input' })
  let x = input
  const apply = (layer: tf.layers.Layer) => {
    x = layer.apply(x) as tf.SymbolicTensor
  }
  VGG_CONFIGS[plan.depth].blocks.forEach((block, b) => {
    for (let c = 1; c <= block.convs; c++) apply(conv(`block${b + 1}_conv${c}`, block.filters))
    apply(tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }))
  })
  apply(tf.layers.flatten({ name: 'flatten' }))
  apply(dense('fc1', plan.fcWidth, 'relu'))
  if (plan.dropout > 0) apply(tf.layers.dropout({ rate: plan.dropout, name: 'fc1_dropout' }))
  apply(dense('fc2', plan.fcWidth, 'relu'))
  if (plan.dropout > 0) apply(tf.layers.dropout({ rate: plan.dropout, name: 'fc2_dropout' }))
  apply(dense('predictions', plan.numClasses, 'linear'))
  const model = tf.model({ inputs: input, outputs: x, name: `vgg${plan.depth}` })

  if (options.weights !== undefined) {
    for (const name of willLoad) {
      const w = options.weights.get(name)
      if (w !== undefined) setLayerWeights(model.getLayer(name), w)
    }
  }
  return model
}

export interface LayerInfo {
  name: string
  className: string
  /** Output shape with the batch dimension as null. */
  outputShape: (number | null)[]
  /** Number of parameters (for a WN layer: v, g and bias). */
  params: number
  /** Parameters that train (0 for a frozen layer). */
  trainableParams: number
  trainable: boolean
  weightNorm: boolean
}

/** Every layer of a model, in order, with its output shape and parameter counts. */
export function listLayers(model: tf.LayersModel): LayerInfo[] {
  const count = (ws: tf.LayerVariable[]) => ws.reduce((n, w) => n + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0)
  return model.layers.map((layer) => {
    const shape = layer.outputShape
    const first = Array.isArray(shape[0]) ? (shape[0] as (number | null)[]) : (shape as (number | null)[])
    return {
      name: layer.name,
      className: layer.getClassName(),
      outputShape: [...first],
      params: count(layer.weights),
      trainableParams: count(layer.trainableWeights),
      trainable: layer.trainable,
      weightNorm: isWeightNormLayer(layer)
    }
  })
}
