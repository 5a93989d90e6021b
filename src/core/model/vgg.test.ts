import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import type { VggWeights } from '../weights/vgg-weights'
import { randomVggWeights } from './random-weights'
import { buildVgg, listLayers, planVgg, planWeightLoading, VGG_CONFIGS, vggConvLayerNames, vggWeightLayerNames } from './vgg'
import { isWeightNormLayer } from './weight-norm'

beforeAll(async () => {
  await tf.setBackend('cpu')
})

function relErr(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync()
  const y = b.dataSync()
  expect(x.length).toBe(y.length)
  let diff = 0
  let scale = 0
  for (let i = 0; i < x.length; i++) {
    diff = Math.max(diff, Math.abs(x[i] - y[i]))
    scale = Math.max(scale, Math.abs(y[i]))
  }
  return diff / Math.max(scale, 1e-30)
}

const VGG16_LAYERS = [
  'input',
  'block1_conv1',
  'block1_conv2',
  'block1_pool',
  'block2_conv1',
  'block2_conv2',
  'block2_pool',
  'block3_conv1',
  'block3_conv2',
  'block3_conv3',
  'block3_pool',
  'block4_conv1',
  'block4_conv2',
  'block4_conv3',
  'block4_pool',
  'block5_conv1',
  'block5_conv2',
  'block5_conv3',
  'block5_pool',
  'flatten',
  'fc1',
  'fc1_dropout',
  'fc2',
  'fc2_dropout',
  'predictions'
]

describe('VGG topologies', () => {
  it('A/B/D/E have 8/10/13/16 convs in five blocks plus three dense layers', () => {
    for (const [depth, letter, convs] of [
      [11, 'A', 8],
      [13, 'B', 10],
      [16, 'D', 13],
      [19, 'E', 16]
    ] as const) {
      const config = VGG_CONFIGS[depth]
      expect(config.letter).toBe(letter)
      expect(config.blocks.map((b) => b.filters)).toEqual([64, 128, 256, 512, 512])
      expect(vggConvLayerNames(depth)).toHaveLength(convs)
      expect(vggWeightLayerNames(depth)).toHaveLength(depth)
    }
    expect(vggConvLayerNames(19).slice(-4)).toEqual(['block5_conv1', 'block5_conv2', 'block5_conv3', 'block5_conv4'])
  })

  it('rejects an invalid inputSize, depth, numClasses or layer name', () => {
    for (const inputSize of [0, 16, 48, 100, 256, 224.5, Number.NaN]) {
      expect(() => buildVgg({ depth: 16, inputSize, numClasses: 10 })).toThrow(/inputSize/)
    }
    expect(() => buildVgg({ depth: 17 as 16, inputSize: 32, numClasses: 10 })).toThrow(/depth/)
    expect(() => buildVgg({ depth: 16, inputSize: 32, numClasses: 0 })).toThrow(/numClasses/)
    expect(() => buildVgg({ depth: 16, inputSize: 32, numClasses: 2, weightNorm: new Set(['block5_conv4']) })).toThrow(
      /weightNorm .*block5_conv4/
    )
    expect(() => buildVgg({ depth: 16, inputSize: 32, numClasses: 2, trainable: new Set(['fc3']) })).toThrow(/trainable .*fc3/)
  })
})

describe('VGG16 at 32', () => {
  it('has the Keras layer names, a 512-wide classifier and the expected parameter count', () => {
    const model = buildVgg({ depth: 16, inputSize: 32, numClasses: 10 })
    expect(model.layers.map((l) => l.name)).toEqual(VGG16_LAYERS)
    expect(model.inputs[0].shape).toEqual([null, 32, 32, 3])
    expect(model.outputs[0].shape).toEqual([null, 10])
    const layers = listLayers(model)
    const byName = new Map(layers.map((l) => [l.name, l]))
    expect(byName.get('block5_pool')?.outputShape).toEqual([null, 1, 1, 512])
    expect(byName.get('fc1')?.params).toBe(512 * 512 + 512)
    expect(byName.get('predictions')?.params).toBe(512 * 10 + 10)
    // 14,714,688 conv params + fc1 + fc2 + predictions.
    expect(model.countParams()).toBe(14_714_688 + 262_656 + 262_656 + 5_130)
    expect(layers.reduce((n, l) => n + l.params, 0)).toBe(model.countParams())
    expect((model.getLayer('fc1_dropout').getConfig() as { rate: number }).rate).toBe(0.5)
    expect(model.getLayer('predictions').getConfig().activation).toBe('linear')
  })

  it('builds WN layers where asked, freezes the rest, and can omit dropout', () => {
    const model = buildVgg({
      depth: 16,
      inputSize: 64,
      numClasses: 3,
      dropout: 0,
      fcWidth: 128,
      weightNorm: (name) => name.startsWith('block5') || name === 'predictions',
      trainable: new Set(['block5_conv3', 'fc2', 'predictions'])
    })
    const layers = listLayers(model)
    expect(layers.map((l) => l.name)).not.toContain('fc1_dropout')
    expect(layers.filter((l) => l.weightNorm).map((l) => l.name)).toEqual(['block5_conv1', 'block5_conv2', 'block5_conv3', 'predictions'])
    expect(model.getLayer('fc1').getConfig()).toMatchObject({ units: 128 })
    expect(model.getLayer('fc1').getWeights()[0].shape).toEqual([2 * 2 * 512, 128])
    const trainable = layers.filter((l) => l.trainableParams > 0).map((l) => l.name)
    expect(trainable).toEqual(['block5_conv3', 'fc2', 'predictions'])
    // WN layers carry one g per output channel on top of the plain parameters.
    expect(layers.find((l) => l.name === 'block5_conv3')?.params).toBe(3 * 3 * 512 * 512 + 512 + 512)
    expect(model.trainableWeights).toHaveLength(3 + 2 + 3)
  })

  it('loading the same weights into a plain and a WN model gives the same outputs', () => {
    const options = { depth: 16 as const, inputSize: 32, numClasses: 10 }
    const weights = randomVggWeights(options, 11)
    const plain = buildVgg({ ...options, weights })
    const wn = buildVgg({ ...options, weights, weightNorm: () => true })
    expect(wn.layers.filter(isWeightNormLayer)).toHaveLength(16)
    const x = tf.randomUniform([1, 32, 32, 3], -1, 1, 'float32', 12)
    const expected = plain.predict(x) as tf.Tensor
    expect(relErr(wn.predict(x) as tf.Tensor, expected)).toBeLessThanOrEqual(1e-5)

    // The weights really were loaded: block1_conv1 computes relu(conv(x, W) + b) with the given values.
    const w = weights.get('block1_conv1') as VggWeights extends Map<string, infer V> ? V : never
    const first = tf.model({ inputs: wn.inputs, outputs: wn.getLayer('block1_conv1').output as tf.SymbolicTensor })
    const manual = tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, tf.tensor4d(w.kernel, [3, 3, 3, 64]), 1, 'same'), tf.tensor1d(w.bias)))
    expect(relErr(first.predict(x) as tf.Tensor, manual)).toBeLessThanOrEqual(1e-5)
  })
})

describe('VGG16 at 224 with ImageNet-shaped weights', () => {
  let imagenet: VggWeights
  beforeAll(() => {
    imagenet = randomVggWeights({ depth: 16, inputSize: 224, numClasses: 1000 }, 21)
  })

  it('has 138,357,544 parameters and fc1 reads the HWC-flattened 7x7x512 map; WN preserves the classifier', () => {
    const plain = buildVgg({ depth: 16, inputSize: 224, numClasses: 1000, weights: imagenet })
    expect(plain.layers.map((l) => l.name)).toEqual(VGG16_LAYERS)
    expect(plain.countParams()).toBe(138_357_544)
    const layers = new Map(listLayers(plain).map((l) => [l.name, l]))
    expect(layers.get('block5_pool')?.outputShape).toEqual([null, 7, 7, 512])
    expect(layers.get('flatten')?.outputShape).toEqual([null, 25088])
    expect(layers.get('fc1')?.params).toBe(25088 * 4096 + 4096)
    expect(layers.get('predictions')?.outputShape).toEqual([null, 1000])

    const wn = buildVgg({ depth: 16, inputSize: 224, numClasses: 1000, weights: imagenet, weightNorm: new Set(['fc1', 'predictions']) })
    expect(wn.countParams()).toBe(138_357_544 + 4096 + 1000)

    // Run only the classifier (a full 224 forward pass is ~30 s on the cpu backend).
    const features = tf.randomUniform([1, 7, 7, 512], 0, 1, 'float32', 22)
    const head = (model: tf.LayersModel) =>
      tf.tidy(() => {
        let h = model.getLayer('flatten').apply(features) as tf.Tensor
        for (const name of ['fc1', 'fc2', 'predictions']) h = model.getLayer(name).apply(h) as tf.Tensor
        return h
      })
    const kernels = new Map(
      ['fc1', 'fc2', 'predictions'].map((name) => {
        const w = imagenet.get(name)
        if (w === undefined) throw new Error(name)
        return [name, { kernel: tf.tensor2d(w.kernel, w.kernelShape as [number, number]), bias: tf.tensor1d(w.bias) }]
      })
    )
    const dense = (h: tf.Tensor, name: string) => {
      const w = kernels.get(name)
      if (w === undefined) throw new Error(name)
      return tf.add(tf.matMul(h as tf.Tensor2D, w.kernel), w.bias)
    }
    // NHWC reshaped to [1, 25088] is exactly the HWC flatten order.
    const manual = tf.tidy(() => dense(tf.relu(dense(tf.relu(dense(tf.reshape(features, [1, 25088]), 'fc1')), 'fc2')), 'predictions'))
    expect(relErr(head(plain), manual)).toBeLessThanOrEqual(1e-5)
    expect(relErr(head(wn), manual)).toBeLessThanOrEqual(1e-5)
    // A CHW flatten would give a different answer, so the check above can tell the orders apart.
    const chw = tf.tidy(() => tf.reshape(tf.transpose(features, [0, 3, 1, 2]), [1, 25088]))
    const wrong = tf.tidy(() => dense(tf.relu(dense(tf.relu(dense(chw, 'fc1')), 'fc2')), 'predictions'))
    expect(relErr(wrong, manual)).toBeGreaterThan(0.01)
  })

  it('loads only what fits: convs always, the ImageNet classifier only at 224 with 1000 classes', () => {
    const at = (inputSize: number, numClasses: number) => planWeightLoading(planVgg({ depth: 16, inputSize, numClasses }), imagenet)
    const full = at(224, 1000)
    expect(full.load).toEqual(vggWeightLayerNames(16))
    expect(full.skip).toEqual([])

    const newHead = at(224, 10)
    expect(newHead.load).toEqual([...vggConvLayerNames(16), 'fc1', 'fc2'])
    expect(newHead.skip).toEqual([{ layer: 'predictions', reason: expect.stringMatching(/new head.*1000.*10/) }])

    const small = at(64, 1000)
    expect(small.load).toEqual(vggConvLayerNames(16))
    expect(small.skip.map((s) => s.layer)).toEqual(['fc1', 'fc2', 'predictions'])
    expect(small.skip[0].reason).toMatch(/inputSize 64/)

    // At 64 the model builds from ImageNet weights with a fresh 512-wide classifier.
    const model = buildVgg({ depth: 16, inputSize: 64, numClasses: 4, weights: imagenet })
    expect(model.getLayer('fc1').getWeights()[0].shape).toEqual([4 * 512, 512])
    expect(relErr(model.getLayer('block5_conv3').getWeights()[0], tf.tensor(imagenet.get('block5_conv3')?.kernel ?? []))).toBe(0)

    const missing = new Map(imagenet)
    missing.delete('block3_conv2')
    expect(() => planWeightLoading(planVgg({ depth: 16, inputSize: 32, numClasses: 2 }), missing)).toThrow(/no block3_conv2/)
    const wrong = new Map(imagenet)
    wrong.set('block1_conv1', { kernel: new Float32Array(3 * 3 * 1 * 64), kernelShape: [3, 3, 1, 64], bias: new Float32Array(64) })
    expect(() => planWeightLoading(planVgg({ depth: 16, inputSize: 32, numClasses: 2 }), wrong)).toThrow(/block1_conv1.*\[3, 3, 1, 64\]/)
  })
})
