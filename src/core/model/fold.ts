/**
 * Folding weight normalization away for export: `w = g * v / ||v||` becomes a plain kernel, so
 * the exported model is a plain VGG (Conv2D/Dense only) with no WN overhead.
 */
import * as tf from '@tensorflow/tfjs'
import type { LayerWeights, VggWeights } from '../weights/vgg-weights'
import { isWeightNormLayer, WeightNormConv2D, type WeightNormLayer } from './weight-norm'

/**
 * Folds raw WN values (e.g. read from a checkpoint file) into a plain kernel, computed in
 * float64 per output channel (the last axis of `vShape`).
 */
export function foldWeightNormValues(
  v: Float32Array,
  vShape: readonly number[],
  g: Float32Array,
  bias: Float32Array | null
): LayerWeights {
  const out = vShape[vShape.length - 1]
  const size = vShape.reduce((a, b) => a * b, 1)
  if (v.length !== size) throw new Error(`v has ${v.length} values but shape [${vShape.join(', ')}] needs ${size}`)
  if (g.length !== out) throw new Error(`g has ${g.length} values, expected ${out}`)
  if (bias !== null && bias.length !== out) throw new Error(`bias has ${bias.length} values, expected ${out}`)
  const sumSquares = new Float64Array(out)
  for (let i = 0; i < size; i++) sumSquares[i % out] += v[i] * v[i]
  const scale = new Float64Array(out)
  for (let c = 0; c < out; c++) scale[c] = g[c] / Math.sqrt(Math.max(sumSquares[c], 1e-12))
  const kernel = new Float32Array(size)
  for (let i = 0; i < size; i++) kernel[i] = v[i] * scale[i % out]
  return { kernel, kernelShape: [...vShape], bias: bias === null ? new Float32Array(out) : Float32Array.from(bias) }
}

function hasKernel(layer: tf.layers.Layer): boolean {
  return isWeightNormLayer(layer) || layer.getClassName() === 'Conv2D' || layer.getClassName() === 'Dense'
}

/**
 * The plain kernel and bias a layer computes with: folded for a WN layer (with the same tf ops
 * as its forward pass), copied for a plain `Conv2D`/`Dense`. A layer without bias gets zeros.
 */
export function foldLayerWeights(layer: tf.layers.Layer): LayerWeights {
  if (isWeightNormLayer(layer)) {
    const kernel = layer.effectiveKernel()
    const biasVar = layer.biasParam
    try {
      return {
        kernel: kernel.dataSync() as Float32Array,
        kernelShape: [...kernel.shape],
        bias: biasVar === null ? new Float32Array(layer.outChannels) : (biasVar.read().dataSync() as Float32Array).slice()
      }
    } finally {
      kernel.dispose()
    }
  }
  if (!hasKernel(layer)) throw new Error(`foldLayerWeights: ${layer.name} (${layer.getClassName()}) has no kernel`)
  const [kernel, bias] = layer.getWeights()
  const out = kernel.shape[kernel.rank - 1]
  return {
    kernel: (kernel.dataSync() as Float32Array).slice(),
    kernelShape: [...kernel.shape],
    bias: bias === undefined ? new Float32Array(out) : (bias.dataSync() as Float32Array).slice()
  }
}

/** The plain layer config (className + config) equivalent to a WN layer. */
function plainLayerConfig(layer: WeightNormLayer): { className: string; config: tf.serialization.ConfigDict } {
  const common = {
    name: layer.name,
    trainable: layer.trainable,
    activation: layer.activation,
    useBias: layer.useBias
  }
  if (layer instanceof WeightNormConv2D) {
    return {
      className: 'Conv2D',
      config: {
        ...common,
        filters: layer.filters,
        kernelSize: [...layer.kernelSize],
        strides: [...layer.strides],
        padding: layer.padding,
        dataFormat: 'channelsLast'
      }
    }
  }
  return { className: 'Dense', config: { ...common, units: layer.units } }
}

/** A built plain `Conv2D`/`Dense` (same name and config) holding the folded weights of a WN layer. */
export function foldLayer(layer: WeightNormLayer): tf.layers.Layer {
  const { className, config } = plainLayerConfig(layer)
  const w = foldLayerWeights(layer)
  const args = { ...config, kernelInitializer: 'zeros' as const }
  const plain = layer instanceof WeightNormConv2D ? tf.layers.conv2d(args as Parameters<typeof tf.layers.conv2d>[0]) : tf.layers.dense(args as Parameters<typeof tf.layers.dense>[0])
  const probe = className === 'Conv2D' ? [1, w.kernelShape[0], w.kernelShape[1], w.kernelShape[2]] : [1, w.kernelShape[0]]
  tf.tidy(() => {
    plain.apply(tf.zeros(probe))
  })
  setPlainWeights(plain, w)
  return plain
}

function setPlainWeights(layer: tf.layers.Layer, w: LayerWeights): void {
  const out = w.kernelShape[w.kernelShape.length - 1]
  const tensors = [tf.tensor(w.kernel, w.kernelShape, 'float32')]
  if (layer.weights.length > 1) tensors.push(tf.tensor1d(w.bias, 'float32'))
  else if (w.bias.some((b) => b !== 0)) throw new Error(`${layer.name} has no bias but the folded bias is non-zero (${out} channels)`)
  try {
    layer.setWeights(tensors)
  } finally {
    tf.dispose(tensors)
  }
}

/** Folded plain weights of every Conv2D/Dense/WN layer of a model, by layer name. */
export function foldModelWeights(model: tf.LayersModel): VggWeights {
  const weights: VggWeights = new Map()
  for (const layer of model.layers) {
    if (hasKernel(layer)) weights.set(layer.name, foldLayerWeights(layer))
  }
  return weights
}

/**
 * A copy of the model with every WN layer replaced by the equivalent plain layer holding the
 * folded weights; every other layer keeps its config and weights. Works for any functional model
 * because it rewrites the model's config, not its code.
 */
export function foldModel(model: tf.LayersModel): tf.LayersModel {
  const config = model.getConfig()
  const layerConfigs = config.layers as tf.serialization.ConfigDict[]
  const rewritten = layerConfigs.map((entry) => {
    const layer = model.getLayer(entry.name as string)
    if (!isWeightNormLayer(layer)) return entry
    const { className, config: plain } = plainLayerConfig(layer)
    return { ...entry, className, config: plain }
  })
  const plainModel = tf.LayersModel.fromConfig<tf.LayersModel>(tf.LayersModel, { ...config, layers: rewritten }, {}, true)
  for (const layer of plainModel.layers) {
    const source = model.getLayer(layer.name)
    if (isWeightNormLayer(source)) {
      setPlainWeights(layer, foldLayerWeights(source))
    } else if (source.weights.length > 0) {
      const values = source.getWeights()
      layer.setWeights(values)
    }
  }
  return plainModel
}
