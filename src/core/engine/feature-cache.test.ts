import * as tf from '@tensorflow/tfjs'
import { describe, expect, it } from 'vitest'
import { buildVgg } from '../model/vgg'
import { AUGMENTATION_OFF } from './augment'
import { FeatureStore, planFeatureCache, prefixOutputShape, splitAtFrozenPrefix } from './feature-cache'
import { epochs, layerValues, record, trainerFixture } from './trainer-fixture'
import type { TrainerMessage } from './trainer-messages'

function split(trainable: string[], dropout: number) {
  const model = buildVgg({ depth: 11, inputSize: 32, numClasses: 3, fcWidth: 16, dropout, trainable: new Set(trainable) })
  try {
    const s = splitAtFrozenPrefix(model, (layer) => trainable.includes(layer.name))
    return { boundary: s.boundary, first: s.rest[0]?.name, shape: prefixOutputShape(model, s), prefix: s.prefix.length, rest: s.rest.length, layers: model.layers.length }
  } finally {
    model.dispose()
  }
}

describe('splitAtFrozenPrefix', () => {
  it('ends the prefix before the first layer that trains, keeping the pool that ends a frozen block', () => {
    const s = split(['block5_conv1', 'block5_conv2', 'fc1', 'fc2', 'predictions'], 0.5)
    expect(s).toMatchObject({ boundary: 'block4_pool', first: 'block5_conv1', shape: [2, 2, 512] })
    expect(s.prefix + s.rest + 1).toBe(s.layers) // + the input layer
  })

  it('stops at a dropout even when the layers after it are frozen (dropout is random at every step)', () => {
    expect(split(['predictions'], 0.5)).toMatchObject({ boundary: 'fc1', first: 'fc1_dropout', shape: [16] })
    expect(split(['predictions'], 0)).toMatchObject({ boundary: 'fc2', first: 'predictions', shape: [16] })
  })

  it('has no prefix when the first conv trains', () => {
    expect(split(['block1_conv1', 'predictions'], 0.5)).toMatchObject({ boundary: null, first: 'block1_conv1', shape: [32, 32, 3], prefix: 0 })
  })
})

describe('planFeatureCache', () => {
  const base = { mode: 'auto' as const, boundary: 'block4_pool', featureShape: [14, 14, 512], images: 100, augmentation: AUGMENTATION_OFF }

  it('caches one orientation without augmentation and both with random flips, and says how much memory it takes', () => {
    expect(planFeatureCache(base)).toMatchObject({ cached: true, variants: 1, bytes: 14 * 14 * 512 * 4 * 100 })
    const flipped = planFeatureCache({ ...base, augmentation: { ...AUGMENTATION_OFF, flip: true } })
    expect(flipped).toMatchObject({ cached: true, variants: 2, bytes: 14 * 14 * 512 * 4 * 200 })
    expect(flipped.reason).toMatch(/block4_pool.*77 MB.*both orientations/)
  })

  it('says why it does not cache: augmentation that varies, the budget, the spec, no frozen prefix', () => {
    expect(planFeatureCache({ ...base, augmentation: { ...AUGMENTATION_OFF, crop: 4 } })).toMatchObject({ cached: false, reason: expect.stringMatching(/random crop changes the images/) })
    expect(planFeatureCache({ ...base, augmentation: { ...AUGMENTATION_OFF, brightness: 0.2 } }).reason).toMatch(/random brightness/)
    expect(planFeatureCache({ ...base, budgetBytes: 10 * 1024 ** 2 })).toMatchObject({ cached: false, reason: expect.stringMatching(/38 MB, more than the 10 MB allowed/) })
    expect(planFeatureCache({ ...base, mode: 'off' })).toMatchObject({ cached: false, reason: expect.stringMatching(/turned off/) })
    expect(planFeatureCache({ ...base, boundary: null })).toMatchObject({ cached: false, reason: expect.stringMatching(/first layer trains/) })
  })
})

describe('FeatureStore', () => {
  it('returns the stored features of the indices asked for, each in the orientation asked for', () => {
    const store = new FeatureStore(3, [2], 2)
    store.write(0, 0, Float32Array.from([0, 1, 10, 11, 20, 21]))
    store.write(1, 1, Float32Array.from([-10, -11, -20, -21]))
    const batch = store.batch([2, 1], (b) => (b === 1 ? 1 : 0))
    expect(batch.shape).toEqual([2, 2])
    expect(Array.from(batch.dataSync())).toEqual([20, 21, -10, -11])
    batch.dispose()
  })
})

const { spec } = trainerFixture()

function started(messages: TrainerMessage[]) {
  const m = messages.find((x) => x.type === 'started')
  if (m?.type !== 'started') throw new Error('no started message')
  return m
}

describe('training with the feature cache', () => {
  it('gives the same run as without it (last block + head, random flips), computing the prefix once per image and orientation', async () => {
    const trainable = ['block5_conv1', 'block5_conv2', 'fc1', 'fc2', 'predictions']
    const model = { ...spec({ name: 'x' }).model, trainable, weightNorm: ['block5_conv2', 'fc1'] }
    const common = { epochs: 2, model, optimizer: { kind: 'adam' as const, learningRate: 1e-4 }, augmentation: { ...AUGMENTATION_OFF, flip: true } }
    const cached = await record(spec({ name: 'cached', ...common }))
    const uncached = await record(spec({ name: 'uncached', ...common, featureCache: 'off' }))
    try {
      expect(started(cached.messages).featureCache).toMatchObject({ cached: true, boundary: 'block4_pool' })
      expect(started(uncached.messages).featureCache).toMatchObject({ cached: false, reason: expect.stringMatching(/turned off/) })
      const caching = cached.messages.flatMap((m) => (m.type === 'preparing' && m.stage === 'caching-features' ? [m] : []))
      // 18 train + 6 validation images, both orientations.
      expect(caching[caching.length - 1]).toMatchObject({ done: 48, total: 48 })
      expect(uncached.messages.some((m) => m.type === 'preparing' && m.stage === 'caching-features')).toBe(false)

      const a = epochs(cached.messages)
      const b = epochs(uncached.messages)
      expect(a).toHaveLength(2)
      for (let i = 0; i < 2; i++) {
        expect(a[i].trainLoss).toBeCloseTo(b[i].trainLoss, 4)
        expect(a[i].valLoss ?? NaN).toBeCloseTo(b[i].valLoss ?? NaN, 4)
        expect(a[i].trainAccuracy).toBe(b[i].trainAccuracy)
      }
      for (const layer of ['block5_conv1', 'block5_conv2', 'predictions']) {
        const [wa, wb] = [layerValues(cached.result.model, layer), layerValues(uncached.result.model, layer)]
        wa.forEach((w, k) => {
          const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(w, wb[k]))).dataSync()[0])
          expect(diff, `${layer} weight ${k}`).toBeLessThan(1e-5)
        })
      }
      // The cache is plain JS memory: the tensor count stays flat from epoch to epoch.
      expect(new Set(cached.tensorsAtEpochEnd).size).toBe(1)
    } finally {
      cached.result.model.dispose()
      uncached.result.model.dispose()
    }
  })

  it('is off, saying why, when augmentation changes the images every epoch', async () => {
    const run = await record(spec({ name: 'cropped', epochs: 1, augmentation: { ...AUGMENTATION_OFF, crop: 2 } }))
    try {
      expect(started(run.messages).featureCache).toMatchObject({ cached: false, boundary: 'flatten', reason: expect.stringMatching(/random crop/) })
      expect(epochs(run.messages)).toHaveLength(1)
    } finally {
      run.result.model.dispose()
    }
  })
})
