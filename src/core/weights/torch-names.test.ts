import { describe, expect, it } from 'vitest'
import { randomVggWeights, torchStateDict, floatsDiffer } from '../../../test/generators/vgg-weight-files'
import { detectTorchFlavor, findBatchNormTensors, torchFeatureConvIndices, torchNameMap, vggWeightsToTorch } from './torch-names'

describe('torchvision / timm names', () => {
  it('indexes the convolutions of configs A, B, D and E inside features', () => {
    expect(torchFeatureConvIndices(11)).toEqual([0, 3, 6, 8, 11, 13, 16, 18])
    expect(torchFeatureConvIndices(13)).toEqual([0, 2, 5, 7, 10, 12, 15, 17, 20, 22])
    expect(torchFeatureConvIndices(16)).toEqual([0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28])
    expect(torchFeatureConvIndices(19)).toEqual([0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34])
  })

  it('maps VGG16 to Keras layer names', () => {
    const tv = torchNameMap('torchvision', 16)
    expect(tv[0]).toEqual({ layer: 'block1_conv1', weight: 'features.0.weight', bias: 'features.0.bias' })
    expect(tv[4]).toEqual({ layer: 'block3_conv1', weight: 'features.10.weight', bias: 'features.10.bias' })
    expect(tv[12]).toEqual({ layer: 'block5_conv3', weight: 'features.28.weight', bias: 'features.28.bias' })
    expect(tv.slice(13).map((n) => [n.layer, n.weight])).toEqual([
      ['fc1', 'classifier.0.weight'],
      ['fc2', 'classifier.3.weight'],
      ['predictions', 'classifier.6.weight']
    ])
    const timm = torchNameMap('timm', 16)
    expect(timm[12].weight).toBe('features.28.weight')
    expect(timm.slice(13).map((n) => n.bias)).toEqual(['pre_logits.fc1.bias', 'pre_logits.fc2.bias', 'head.fc.bias'])
  })

  it('tells torchvision from timm and spots batch norm', () => {
    expect(detectTorchFlavor(['features.0.weight', 'classifier.0.weight'])).toBe('torchvision')
    expect(detectTorchFlavor(['features.0.weight'])).toBe('torchvision')
    expect(detectTorchFlavor(['features.0.weight', 'pre_logits.fc1.weight', 'head.fc.weight'])).toBe('timm')
    expect(detectTorchFlavor(['conv1.weight'])).toBeUndefined()
    expect(findBatchNormTensors(['features.0.weight', 'features.1.running_mean', 'features.1.num_batches_tracked'])).toEqual([
      'features.1.running_mean',
      'features.1.num_batches_tracked'
    ])
  })
})

describe('vggWeightsToTorch (export direction)', () => {
  for (const flavor of ['torchvision', 'timm'] as const) {
    it(`matches the generator's element-by-element ${flavor} layout`, () => {
      const opts = { depth: 16 as const, widthDivisor: 16 }
      const weights = randomVggWeights({ ...opts, seed: 4 })
      const mine = vggWeightsToTorch(weights, flavor, opts)
      const naive = torchStateDict(weights, { flavor, ...opts })
      expect([...mine.keys()]).toEqual([...naive.keys()])
      for (const [name, t] of naive) {
        expect(mine.get(name)?.shape, name).toEqual(t.shape)
        expect(floatsDiffer(mine.get(name)?.data ?? new Float32Array(0), t.data), name).toBeUndefined()
      }
    })
  }
})
