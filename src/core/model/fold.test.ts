import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { foldLayer, foldLayerWeights, foldModel, foldModelWeights, foldWeightNormValues } from './fold'
import { randomVggWeights } from './random-weights'
import { buildVgg, listLayers, vggWeightLayerNames } from './vgg'
import { isWeightNormLayer, weightNormKernel, WeightNormConv2D, WeightNormDense } from './weight-norm'

beforeAll(async () => {
  await tf.setBackend('cpu')
})

function relErr(a: tf.Tensor | Float32Array, b: tf.Tensor | Float32Array): number {
  const x = a instanceof Float32Array ? a : a.dataSync()
  const y = b instanceof Float32Array ? b : b.dataSync()
  expect(x.length).toBe(y.length)
  let diff = 0
  let scale = 0
  for (let i = 0; i < x.length; i++) {
    diff = Math.max(diff, Math.abs(x[i] - y[i]))
    scale = Math.max(scale, Math.abs(y[i]))
  }
  return diff / Math.max(scale, 1e-30)
}

/** Moves g and bias away from their initial values so folding is not the identity. */
function perturb(layer: WeightNormConv2D | WeightNormDense, seed: number): void {
  const out = layer.outChannels
  layer.gParam.write(tf.randomUniform([out], 0.5, 2, 'float32', seed))
  layer.biasParam?.write(tf.randomNormal([out], 0, 0.1, 'float32', seed + 1))
}

describe('folding a single layer', () => {
  it('foldWeightNormValues computes g v / ||v|| per output channel', () => {
    const v = tf.randomNormal([3, 3, 4, 5], 0, 1, 'float32', 1)
    const g = tf.randomUniform([5], -2, 2, 'float32', 2)
    const bias = new Float32Array([1, 2, 3, 4, 5])
    const folded = foldWeightNormValues(v.dataSync() as Float32Array, v.shape, g.dataSync() as Float32Array, bias)
    expect(folded.kernelShape).toEqual([3, 3, 4, 5])
    expect(relErr(folded.kernel, weightNormKernel(v, g))).toBeLessThan(1e-6)
    expect(Array.from(folded.bias)).toEqual([1, 2, 3, 4, 5])
    expect(Array.from(foldWeightNormValues(new Float32Array(4), [2, 2], new Float32Array(2), null).bias)).toEqual([0, 0])
    expect(() => foldWeightNormValues(new Float32Array(5), [2, 2], new Float32Array(2), null)).toThrow(/needs 4/)
    expect(() => foldWeightNormValues(new Float32Array(4), [2, 2], new Float32Array(3), null)).toThrow(/g has 3/)
  })

  it('conv: the plain layer has the same config and outputs', () => {
    const wn = new WeightNormConv2D({ name: 'c1', filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' })
    const x = tf.randomNormal([2, 9, 9, 3], 0, 1, 'float32', 3)
    wn.apply(x)
    perturb(wn, 4)
    const plain = foldLayer(wn)
    expect(plain.getClassName()).toBe('Conv2D')
    expect(plain.getConfig()).toMatchObject({ name: 'c1', filters: 4, kernelSize: [3, 3], strides: [2, 2], padding: 'same', activation: 'relu' })
    expect(plain.weights.map((w) => w.originalName)).toEqual(['c1/kernel', 'c1/bias'])
    expect(relErr(plain.apply(x) as tf.Tensor, wn.apply(x) as tf.Tensor)).toBeLessThanOrEqual(1e-5)
  })

  it('dense: the plain layer has the same config and outputs', () => {
    const wn = new WeightNormDense({ name: 'd1', units: 6, activation: 'linear', trainable: false })
    const x = tf.randomNormal([5, 7], 0, 1, 'float32', 5)
    wn.apply(x)
    perturb(wn, 6)
    const plain = foldLayer(wn)
    expect(plain.getClassName()).toBe('Dense')
    expect(plain.trainable).toBe(false)
    expect(relErr(plain.apply(x) as tf.Tensor, wn.apply(x) as tf.Tensor)).toBeLessThanOrEqual(1e-5)
    const w = foldLayerWeights(wn)
    expect(w.kernelShape).toEqual([7, 6])
    expect(relErr(w.kernel, weightNormKernel(wn.vParam.read(), wn.gParam.read()))).toBe(0)
  })

  it('a layer without bias folds to zeros bias and a plain layer is copied as is', () => {
    const wn = new WeightNormDense({ units: 2, useBias: false })
    wn.apply(tf.ones([1, 3]))
    expect(Array.from(foldLayerWeights(wn).bias)).toEqual([0, 0])
    const dense = tf.layers.dense({ units: 2 })
    dense.apply(tf.ones([1, 3]))
    expect(relErr(foldLayerWeights(dense).kernel, dense.getWeights()[0])).toBe(0)
    const pool = tf.layers.maxPooling2d({ poolSize: 2 })
    expect(() => foldLayerWeights(pool)).toThrow(/has no kernel/)
  })
})

describe('folding a whole model', () => {
  const options = {
    depth: 11 as const,
    inputSize: 32,
    numClasses: 5,
    weightNorm: new Set(['block1_conv1', 'block3_conv2', 'block5_conv2', 'fc1', 'predictions']),
    trainable: new Set(['block5_conv2', 'fc1', 'fc2', 'predictions'])
  }

  it('gives a plain VGG with the same outputs, trainable flags and plain parameter count', async () => {
    const model = buildVgg({ ...options, weights: randomVggWeights({ ...options, numClasses: 1000 }, 7) })
    for (const layer of model.layers) if (isWeightNormLayer(layer)) perturb(layer, layer.outChannels)
    const folded = foldModel(model)
    expect(folded.layers.map((l) => l.name)).toEqual(model.layers.map((l) => l.name))
    expect(folded.layers.filter(isWeightNormLayer)).toHaveLength(0)
    expect(folded.getLayer('block1_conv1').getClassName()).toBe('Conv2D')
    expect(folded.getLayer('predictions').getClassName()).toBe('Dense')
    expect(listLayers(folded).map((l) => [l.name, l.trainable])).toEqual(listLayers(model).map((l) => [l.name, l.trainable]))
    const plainParams = buildVgg({ ...options, weightNorm: undefined }).countParams()
    expect(folded.countParams()).toBe(plainParams)
    expect(model.countParams()).toBeGreaterThan(plainParams)

    const x = tf.randomNormal([1, 32, 32, 3], 0, 1, 'float32', 8)
    const expected = model.predict(x) as tf.Tensor
    expect(relErr(folded.predict(x) as tf.Tensor, expected)).toBeLessThanOrEqual(1e-5)

    // Folded weights rebuild the same network through buildVgg (plain, same configuration).
    const weights = foldModelWeights(model)
    expect([...weights.keys()]).toEqual(vggWeightLayerNames(11))
    const rebuilt = buildVgg({ ...options, weightNorm: undefined, weights })
    expect(relErr(rebuilt.predict(x) as tf.Tensor, expected)).toBeLessThanOrEqual(1e-5)

    // The exported topology needs none of our classes.
    let topology = ''
    await folded.save(
      tf.io.withSaveHandler(async (artifacts) => {
        topology = JSON.stringify(artifacts.modelTopology)
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }
      })
    )
    expect(topology).toContain('Conv2D')
    expect(topology).not.toContain('WeightNorm')
  })
})
