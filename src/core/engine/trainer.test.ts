import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { describe, expect, it } from 'vitest'
import { floatsDiffer } from '../../../test/generators/vgg-weight-files'
import { loadCheckpoint } from './checkpoint'
import { LayerwiseOptimizer } from './optimizer'
import { explainFailure } from './trainer'
import { epochs, layerValues, record, trainerFixture } from './trainer-fixture'

const { state, spec } = trainerFixture()

describe('train on wasm', () => {
  it('head only: the loss falls, accuracy beats chance, memory stays flat, messages come in order', async () => {
    const { result, messages, tensorsAtEpochEnd } = await record(spec({ name: 'head', epochs: 4, batchSize: 3 }))
    try {
      const e = epochs(messages)
      expect(e.map((m) => m.epoch)).toEqual([1, 2, 3, 4])
      expect(e[3].trainLoss).toBeLessThan(0.7 * e[0].trainLoss)
      expect(e[3].trainAccuracy).toBeGreaterThan(0.6)
      expect(e[3].valAccuracy).not.toBeNull()
      // Same number of live tensors at the end of every epoch: nothing leaks per step or epoch.
      expect(new Set(tensorsAtEpochEnd).size).toBe(1)

      const types = messages.map((m) => m.type).filter((t) => t !== 'preparing')
      const epochMessages = [...Array.from({ length: 6 }, () => 'step'), 'epoch', 'checkpoint']
      expect(types).toEqual(['started', ...Array.from({ length: 4 }, () => epochMessages).flat(), 'finished'])
      const started = messages.find((m) => m.type === 'started')
      expect(started).toMatchObject({ backend: 'wasm', stepsPerEpoch: 6, trainImages: 18, validationImages: 6, startEpoch: 0 })
      if (started?.type !== 'started') throw new Error('no started')
      expect(started.trainableParams).toBe(512 * 32 + 32 + 32 * 32 + 32 + 32 * 3 + 3 + 32 + 3) // fc1 v,g,b; fc2; predictions v,g,b
      const wn = e[0].wn.map((s) => s.layer)
      expect(wn).toEqual(['fc1', 'predictions'])
      for (const s of e[0].wn) expect(s.gMin).toBeLessThanOrEqual(s.gMax)
      const finished = messages[messages.length - 1]
      expect(finished).toMatchObject({ type: 'finished', status: 'completed', epochsCompleted: 4, restoredBest: false })
      expect(result.finalCheckpoint).toBe(join(state.root, 'head', 'epoch-0004'))
    } finally {
      result.model.dispose()
    }
  })

  it('last block + head (conv training through the wasm conv gradient): the loss falls, frozen layers stay put', async () => {
    const trainable = ['block5_conv1', 'block5_conv2', 'fc1', 'fc2', 'predictions']
    const { result, messages } = await record(
      spec({ name: 'last-block', epochs: 3, optimizer: { kind: 'adam', learningRate: 1e-4 }, model: { ...spec({ name: 'x' }).model, trainable, weightNorm: ['block5_conv2', 'predictions'] } })
    )
    try {
      const e = epochs(messages)
      expect(e[2].trainLoss).toBeLessThan(0.7 * e[0].trainLoss)
      expect(e[2].trainAccuracy).toBeGreaterThan(0.6)
      // block4 is frozen: its weights are the seeded initial ones, identical in a fresh build.
      const checkpoint = await loadCheckpoint(join(state.root, 'last-block', 'epoch-0001'), (n) => n.startsWith('model/block4_conv2') || n.startsWith('model/block5_conv1'))
      expect(floatsDiffer(layerValues(result.model, 'block4_conv2')[0], checkpoint.tensors.get('model/block4_conv2/kernel')?.data ?? new Float32Array())).toBeUndefined()
      expect(floatsDiffer(layerValues(result.model, 'block5_conv1')[0], checkpoint.tensors.get('model/block5_conv1/kernel')?.data ?? new Float32Array())).toBeDefined()
    } finally {
      result.model.dispose()
    }
  })
})

describe('LayerwiseOptimizer', () => {
  function variable(values: number[]): tf.Variable {
    return tf.variable(tf.tensor1d(values))
  }

  it('sgd: step = lr * multiplier * grad; momentum accumulates; L2 decay only where asked', () => {
    const a = variable([1, 2])
    const b = variable([1, 2])
    const opt = new LayerwiseOptimizer({ kind: 'sgd', learningRate: 0.1, momentum: 0.5, weightDecay: 0.1 }, [
      { key: 'a/kernel', layer: 'a', variable: a, multiplier: 1, decays: true },
      { key: 'b/bias', layer: 'b', variable: b, multiplier: 0.5, decays: false }
    ])
    const grads = { [a.name]: tf.tensor1d([1, 1]), [b.name]: tf.tensor1d([1, 1]) }
    opt.applyGradients(grads, 0.1)
    // a: g = 1 + 0.1 * w -> [1.1, 1.2]; w -= 0.1 * g
    expect(Array.from(a.dataSync())).toEqual([1 - 0.11, 2 - 0.12].map(Math.fround))
    // b: no decay, half the rate
    expect(Array.from(b.dataSync()).map((x) => +x.toFixed(6))).toEqual([0.95, 1.95])
    opt.applyGradients(grads, 0.1)
    // b's momentum buffer: 0.5 * 1 + 1 = 1.5 -> w -= 0.05 * 1.5
    expect(Array.from(b.dataSync()).map((x) => +x.toFixed(6))).toEqual([0.875, 1.875])
    expect(opt.stateVariables().map((s) => s.name)).toEqual(['a/kernel/momentum', 'b/bias/momentum'])
    opt.dispose()
    tf.dispose([a, b, ...Object.values(grads)])
  })

  it('adam\'s first step moves each weight by lr * multiplier; adamw also decays kernels by lr * wd', () => {
    const a = variable([1, -1])
    const b = variable([1, -1])
    const adamw = new LayerwiseOptimizer({ kind: 'adamw', learningRate: 0.01, weightDecay: 0.5 }, [
      { key: 'a/v', layer: 'a', variable: a, multiplier: 1, decays: true },
      { key: 'b/g', layer: 'b', variable: b, multiplier: 0.1, decays: false }
    ])
    const grads = { [a.name]: tf.tensor1d([3, -0.2]), [b.name]: tf.tensor1d([3, -0.2]) }
    adamw.applyGradients(grads, 0.01)
    // a: w * (1 - 0.01 * 0.5) - 0.01 * sign(g)
    expect(a.dataSync()[0]).toBeCloseTo(1 * 0.995 - 0.01, 6)
    expect(a.dataSync()[1]).toBeCloseTo(-1 * 0.995 + 0.01, 6)
    // b: no decay, a tenth of the rate
    expect(b.dataSync()[0]).toBeCloseTo(1 - 0.001, 6)
    expect(b.dataSync()[1]).toBeCloseTo(-1 + 0.001, 6)
    expect(adamw.step).toBe(1)
    adamw.dispose()
    tf.dispose([a, b, ...Object.values(grads)])
  })
})

describe('explainFailure', () => {
  it('says that the wasm heap ran out, and what to do, where the wasm build only says "memory access out of bounds"', () => {
    for (const message of ['memory access out of bounds', 'replica 1 (worker thread): Aborted(). Build with -sASSERTIONS for more info.']) {
      const explained = explainFailure(new Error(message), 'wasm')
      expect(explained.message).toMatch(/^the wasm backend ran out of memory \(its heap holds at most 4 GiB\)/)
      expect(explained.message).toContain(message)
      expect(explained.message).toMatch(/fewer layers.*smaller batch size.*tfjs-node/)
    }
  })

  it('passes every other error through as it is', () => {
    const other = new Error('image cat/1.jpg could not be decoded')
    expect(explainFailure(other, 'wasm')).toBe(other)
    const native = new Error('memory access out of bounds')
    expect(explainFailure(native, 'tensorflow')).toBe(native)
  })
})
