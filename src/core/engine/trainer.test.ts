import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { writeImageFolder } from '../../../test/generators/images'
import { floatsDiffer, randomVggWeights as narrowVggWeights, writeTorchSafetensors } from '../../../test/generators/vgg-weight-files'
import { foldLayerWeights } from '../model/fold'
import { buildVgg, vggWeightLayerNames } from '../model/vgg'
import { randomVggWeights } from '../model/random-weights'
import { loadCheckpoint } from './checkpoint'
import { bestEpochOf, LayerwiseOptimizer, modelVariables, seededInit, train, type TrainResult } from './trainer'
import type { TrainerMessage } from './trainer-messages'
import type { TrainerSpecInput } from './trainer-spec'

const CLASSES = ['class-0', 'class-1', 'class-2']
let items: TrainerSpecInput['data']['items'] = []
let root = ''

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fts-trainer-'))
  const images = await writeImageFolder(join(root, 'images'), { classes: 3, perClass: 8, size: 32, format: 'png', seed: 3 })
  // 6 train + 2 validation images per class.
  items = images.map((image, i) => ({ path: image.path, label: CLASSES.indexOf(image.label), split: i % 8 >= 6 ? 'validation' : 'train' }))
})

function spec(overrides: Partial<TrainerSpecInput> & { name: string }): TrainerSpecInput {
  const { name, ...rest } = overrides
  return {
    runId: name,
    model: { depth: 11, inputSize: 32, numClasses: 3, fcWidth: 32, dropout: 0, weightNorm: ['fc1', 'predictions'], trainable: ['fc1', 'fc2', 'predictions'], lrMultipliers: {} },
    weights: null,
    data: { items, classNames: CLASSES },
    optimizer: { kind: 'adam', learningRate: 1e-3 },
    schedule: { kind: 'constant', warmupEpochs: 0 },
    batchSize: 6,
    epochs: 4,
    seed: 11,
    earlyStopping: null,
    classWeights: 'none',
    augmentation: { flip: false, crop: 0, rotationDegrees: 0, brightness: 0, contrast: 0 },
    checkpointDir: join(root, name),
    backend: 'wasm',
    ...rest
  }
}

interface Recorded {
  result: TrainResult
  messages: TrainerMessage[]
  tensorsAtEpochEnd: number[]
}

async function record(input: TrainerSpecInput): Promise<Recorded> {
  const messages: TrainerMessage[] = []
  const tensorsAtEpochEnd: number[] = []
  const result = await train(input, {
    onProgress: (m) => {
      messages.push(m)
      if (m.type === 'epoch') tensorsAtEpochEnd.push(tf.memory().numTensors)
    }
  })
  return { result, messages, tensorsAtEpochEnd }
}

function epochs(messages: TrainerMessage[]) {
  return messages.flatMap((m) => (m.type === 'epoch' ? [m] : []))
}

function layerValues(model: tf.LayersModel, layer: string): Float32Array[] {
  return model.getLayer(layer).getWeights().map((w) => (w.dataSync() as Float32Array).slice())
}

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
      expect(result.finalCheckpoint).toBe(join(root, 'head', 'epoch-0004'))
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
      const checkpoint = await loadCheckpoint(join(root, 'last-block', 'epoch-0001'), (n) => n.startsWith('model/block4_conv2') || n.startsWith('model/block5_conv1'))
      expect(floatsDiffer(layerValues(result.model, 'block4_conv2')[0], checkpoint.tensors.get('model/block4_conv2/kernel')?.data ?? new Float32Array())).toBeUndefined()
      expect(floatsDiffer(layerValues(result.model, 'block5_conv1')[0], checkpoint.tensors.get('model/block5_conv1/kernel')?.data ?? new Float32Array())).toBeDefined()
    } finally {
      result.model.dispose()
    }
  })

  it('a layer with learning-rate multiplier 0 does not change while the others do', async () => {
    const model = { ...spec({ name: 'x' }).model, weightNorm: [], trainable: ['fc1', 'fc2', 'predictions'], lrMultipliers: { fc2: 0, fc1: 0.5 } }
    const { result } = await record(spec({ name: 'multiplier', epochs: 1, model }))
    // The same seed initializes a fresh build identically.
    const initial = buildVgg({ depth: 11, inputSize: 32, numClasses: 3, fcWidth: 32, dropout: 0 })
    try {
      seededInit(initial, vggWeightLayerNames(11), 11)
      for (const layer of ['fc2', 'block5_conv2']) {
        layerValues(initial, layer).forEach((w, i) => expect(floatsDiffer(layerValues(result.model, layer)[i], w), layer).toBeUndefined())
      }
      for (const layer of ['fc1', 'predictions']) expect(floatsDiffer(layerValues(result.model, layer)[0], layerValues(initial, layer)[0]), layer).toBeDefined()
      // No optimizer state is kept for a layer that never moves.
      const checkpoint = await loadCheckpoint(join(root, 'multiplier', 'epoch-0001'), (n) => n.startsWith('optimizer/'))
      expect([...checkpoint.tensors.keys()].filter((k) => k.includes('fc2'))).toEqual([])
      expect([...checkpoint.tensors.keys()].filter((k) => k.includes('fc1'))).toHaveLength(4)
    } finally {
      result.model.dispose()
      initial.dispose()
    }
  })

  it('early stopping on val_accuracy ends with the best epoch\'s weights, re-read from its checkpoint', async () => {
    const { result, messages } = await record(
      spec({ name: 'early', epochs: 8, earlyStopping: { patience: 2, metric: 'val_accuracy' } })
    )
    try {
      const e = epochs(messages)
      const best = bestEpochOf(e, 'val_accuracy')
      expect(result.bestEpoch).toBe(best?.epoch)
      const finished = messages[messages.length - 1]
      if (finished.type !== 'finished') throw new Error('no finished')
      if (result.status === 'stopped-early') {
        expect(e.length).toBe((best?.epoch ?? 0) + 2)
        expect(e.length).toBeLessThan(8)
      }
      expect(finished.metrics?.epoch).toBe(best?.epoch)
      expect(result.finalCheckpoint).toBe(join(root, 'early', `epoch-${String(best?.epoch).padStart(4, '0')}`))
      expect(result.restoredBest).toBe(best?.epoch !== e[e.length - 1].epoch)
      // Whatever happened, the model holds exactly the weights of the final checkpoint.
      const final = await loadCheckpoint(result.finalCheckpoint ?? '', (n) => n.startsWith('model/'))
      for (const v of modelVariables(result.model)) {
        expect(floatsDiffer(v.variable.read().dataSync() as Float32Array, final.tensors.get(`model/${v.key}`)?.data ?? new Float32Array()), v.key).toBeUndefined()
      }
      // This seed does stop early and restore (deterministic on wasm); keep the test honest.
      expect(result.status).toBe('stopped-early')
      expect(result.restoredBest).toBe(true)
    } finally {
      result.model.dispose()
    }
  })

  it('starts from a weights file: convs hold the file values (exactly, via WN too), the head is fresh; another architecture fails naming the file', async () => {
    const convs = new Map([...randomVggWeights({ depth: 11, inputSize: 32, numClasses: 3, fcWidth: 32 }, 5)].filter(([name]) => name.startsWith('block')))
    const file = join(root, 'vgg11.safetensors')
    await writeTorchSafetensors(file, convs, { flavor: 'torchvision', depth: 11 })
    const model = { ...spec({ name: 'x' }).model, weightNorm: ['block1_conv1', 'fc1'], trainable: ['predictions'] }
    const { result, messages } = await record(spec({ name: 'weights', epochs: 1, weights: { path: file }, model }))
    try {
      for (const layer of ['block1_conv1', 'block3_conv2', 'block5_conv2']) {
        const folded = foldLayerWeights(result.model.getLayer(layer))
        const expected = convs.get(layer)?.kernel ?? new Float32Array()
        const worst = folded.kernel.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i])), 0)
        expect(worst, layer).toBeLessThan(1e-6)
      }
      const started = messages.find((m) => m.type === 'started')
      if (started?.type !== 'started') throw new Error('no started')
      expect(started.warnings.join('\n')).toMatch(/fc1 starts fresh \(seeded init\): not in the weights/)
    } finally {
      result.model.dispose()
    }

    // Narrow (widthDivisor 64) VGG16 convs: the depth check comes before any shape check.
    const wrong = join(root, 'vgg16.safetensors')
    await writeTorchSafetensors(wrong, narrowVggWeights({ depth: 16, widthDivisor: 64, top: 'notop' }), { flavor: 'torchvision', depth: 16, widthDivisor: 64 })
    const failed: TrainerMessage[] = []
    await expect(train(spec({ name: 'wrong', weights: { path: wrong } }), { onProgress: (m) => failed.push(m) })).rejects.toThrow(/vgg16\.safetensors: file holds VGG16 weights/)
    expect(failed[failed.length - 1]).toMatchObject({ type: 'failed', message: expect.stringMatching(/vgg16\.safetensors/) })
  })

  it('an image that does not decode fails the run naming the file', async () => {
    const bad = join(root, 'broken.png')
    await import('node:fs/promises').then((fs) => fs.writeFile(bad, 'not a png'))
    const broken = [...items.slice(0, 3), { path: bad, label: 0, split: 'train' as const }]
    await expect(train(spec({ name: 'broken', data: { items: broken, classNames: CLASSES } }))).rejects.toThrow(new RegExp(`cannot decode training image ${bad}`))
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
