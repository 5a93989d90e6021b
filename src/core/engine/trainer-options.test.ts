import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { floatsDiffer, randomVggWeights as narrowVggWeights, writeTorchSafetensors } from '../../../test/generators/vgg-weight-files'
import { foldLayerWeights } from '../model/fold'
import { buildVgg, vggWeightLayerNames } from '../model/vgg'
import { randomVggWeights } from '../model/random-weights'
import { loadCheckpoint } from './checkpoint'
import { modelVariables, seededInit } from './replica'
import { bestEpochOf, train } from './trainer'
import type { TrainerMessage } from './trainer-messages'
import { CLASSES, epochs, layerValues, record, trainerFixture } from './trainer-fixture'

const { state, spec } = trainerFixture()

describe('train on wasm: options and failures', () => {
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
      const checkpoint = await loadCheckpoint(join(state.root, 'multiplier', 'epoch-0001'), (n) => n.startsWith('optimizer/'))
      expect([...checkpoint.tensors.keys()].filter((k) => k.includes('fc2'))).toEqual([])
      expect([...checkpoint.tensors.keys()].filter((k) => k.includes('fc1'))).toHaveLength(4)
    } finally {
      result.model.dispose()
      initial.dispose()
    }
  })

  it('early stopping on val_accuracy ends with the best epoch\'s weights, re-read from its checkpoint', async () => {
    const { result, messages } = await record(
      spec({ name: 'early', epochs: 8, earlyStopping: { patience: 1, metric: 'val_accuracy' } })
    )
    try {
      const e = epochs(messages)
      const best = bestEpochOf(e, 'val_accuracy')
      expect(result.bestEpoch).toBe(best?.epoch)
      const finished = messages[messages.length - 1]
      if (finished.type !== 'finished') throw new Error('no finished')
      if (result.status === 'stopped-early') {
        expect(e.length).toBe((best?.epoch ?? 0) + 1)
        expect(e.length).toBeLessThan(8)
      }
      expect(finished.metrics?.epoch).toBe(best?.epoch)
      expect(result.finalCheckpoint).toBe(join(state.root, 'early', `epoch-${String(best?.epoch).padStart(4, '0')}`))
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
    const file = join(state.root, 'vgg11.safetensors')
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
    const wrong = join(state.root, 'vgg16.safetensors')
    await writeTorchSafetensors(wrong, narrowVggWeights({ depth: 16, widthDivisor: 64, top: 'notop' }), { flavor: 'torchvision', depth: 16, widthDivisor: 64 })
    const failed: TrainerMessage[] = []
    await expect(train(spec({ name: 'wrong', weights: { path: wrong } }), { onProgress: (m) => failed.push(m) })).rejects.toThrow(/vgg16\.safetensors: file holds VGG16 weights/)
    expect(failed[failed.length - 1]).toMatchObject({ type: 'failed', message: expect.stringMatching(/vgg16\.safetensors/) })
  })

  it('an image that does not decode fails the run naming the file', async () => {
    const bad = join(state.root, 'broken.png')
    await writeFile(bad, 'not a png')
    const broken = [...state.items.slice(0, 3), { path: bad, label: 0, split: 'train' as const }]
    await expect(train(spec({ name: 'broken', data: { items: broken, classNames: CLASSES } }))).rejects.toThrow(new RegExp(`cannot decode training image ${bad}`))
  })
})
