import os from 'node:os'
import * as tf from '@tensorflow/tfjs'
import { describe, expect, it } from 'vitest'
import { replicaCount, shareOf } from './data-parallel'
import { epochs, layerValues, record, trainerFixture, type Recorded } from './trainer-fixture'
import type { TrainerSpecInput } from './trainer-spec'

describe('sharing a batch', () => {
  it('splits a batch into consecutive shares whose sizes differ by at most one', () => {
    const batch = Int32Array.from([5, 6, 7, 8, 9, 10, 11])
    expect([0, 1, 2].map((r) => Array.from(shareOf(batch, 3, r)))).toEqual([[5, 6, 7], [8, 9], [10, 11]])
    expect([0, 1].map((r) => shareOf(Int32Array.from([1]), 2, r).length)).toEqual([1, 0])
  })

  it('uses the spec\'s count, else one replica per core on wasm only, never more than the batch', () => {
    expect(replicaCount({ replicas: 3, batchSize: 32 }, 'tensorflow')).toBe(3)
    expect(replicaCount({ replicas: 'auto', batchSize: 32 }, 'tensorflow')).toBe(1)
    expect(replicaCount({ replicas: 'auto', batchSize: 32 }, 'wasm')).toBe(Math.min(os.availableParallelism(), 4))
    expect(replicaCount({ replicas: 4, batchSize: 2 }, 'wasm')).toBe(2)
  })
})

const { spec } = trainerFixture()

function maxDifference(a: Recorded, b: Recorded, layer: string): number {
  const [wa, wb] = [layerValues(a.result.model, layer), layerValues(b.result.model, layer)]
  return Math.max(...wa.map((w, k) => tf.tidy(() => tf.max(tf.abs(tf.sub(w, wb[k]))).dataSync()[0])))
}

/** Two runs of one spec, on one replica and on two; without dropout or augmentation they compute the same thing. */
async function oneAndTwo(name: string, overrides: Partial<TrainerSpecInput>): Promise<[Recorded, Recorded]> {
  const one = await record(spec({ name: `${name}-1`, ...overrides, replicas: 1 }))
  const two = await record(spec({ name: `${name}-2`, ...overrides, replicas: 2 }))
  return [one, two]
}

describe('data-parallel training (two replicas, one in a worker thread)', () => {
  it('averages the shares\' gradients into the whole batch\'s: the same run as one replica (conv layers training, pixels shared)', async () => {
    const trainable = ['block5_conv1', 'block5_conv2', 'fc1', 'fc2', 'predictions']
    const model = { ...spec({ name: 'x' }).model, trainable, weightNorm: ['block5_conv2', 'fc1'] }
    const [one, two] = await oneAndTwo('conv', { model, epochs: 2, featureCache: 'off', optimizer: { kind: 'adam', learningRate: 1e-4 } })
    try {
      const started = two.messages.find((m) => m.type === 'started')
      expect(started).toMatchObject({ replicas: 2 })
      const [a, b] = [epochs(one.messages), epochs(two.messages)]
      expect(b).toHaveLength(2)
      for (let i = 0; i < 2; i++) {
        expect(b[i].trainLoss).toBeCloseTo(a[i].trainLoss, 4)
        expect(b[i].valLoss ?? NaN).toBeCloseTo(a[i].valLoss ?? NaN, 4)
        expect(b[i].trainAccuracy).toBe(a[i].trainAccuracy)
      }
      for (const layer of ['block5_conv1', 'block5_conv2', 'fc1', 'predictions']) expect(maxDifference(one, two, layer), layer).toBeLessThan(1e-5)
      // The weights did move: a broken exchange (no update, or only one share's) would not match.
      expect(b[1].trainLoss).toBeLessThan(b[0].trainLoss)
      expect(new Set(two.tensorsAtEpochEnd).size).toBe(1)
    } finally {
      one.result.model.dispose()
      two.result.model.dispose()
    }
  })

  it('shares the feature cache with the worker, weights the shares by class weight, and handles an uneven last batch', async () => {
    // 18 train images at batch 4: shares of 2 and 2, the last batch 2 (1 and 1).
    const [one, two] = await oneAndTwo('head', { epochs: 2, batchSize: 4, classWeights: 'balanced' })
    try {
      expect(two.messages.find((m) => m.type === 'started')).toMatchObject({ replicas: 2, featureCache: { cached: true } })
      const [a, b] = [epochs(one.messages), epochs(two.messages)]
      for (let i = 0; i < 2; i++) expect(b[i].trainLoss).toBeCloseTo(a[i].trainLoss, 4)
      for (const layer of ['fc1', 'fc2', 'predictions']) expect(maxDifference(one, two, layer), layer).toBeLessThan(1e-5)
    } finally {
      one.result.model.dispose()
      two.result.model.dispose()
    }
  })
})
