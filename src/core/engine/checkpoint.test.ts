import { mkdtemp, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { writeImageFolder } from '../../../test/generators/images'
import { TORCHVISION_PREPROCESSING } from '../weights/vgg-weights'
import { checkpointName, loadCheckpoint, removeUnfinishedCheckpoints, writeCheckpoint, type CheckpointState } from './checkpoint'
import { train } from './trainer'
import type { TrainerMessage } from './trainer-messages'
import type { TrainerSpecInput } from './trainer-spec'

const state: CheckpointState = {
  runId: 'r1',
  epoch: 3,
  globalStep: 12,
  seed: 5,
  stepsPerEpoch: 4,
  model: { depth: 11, inputSize: 32, numClasses: 2, fcWidth: 8, dropout: 0, weightNorm: ['fc1'], trainable: ['fc1'], lrMultipliers: {} },
  preprocessing: TORCHVISION_PREPROCESSING,
  classNames: ['a', 'b'],
  optimizer: { kind: 'adam', step: 12 },
  history: [{ epoch: 1, trainLoss: 1, trainAccuracy: 0.5, valLoss: null, valAccuracy: null }]
}

const tensors = [
  { name: 'model/fc1/v', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 4, 5, 6]) },
  { name: 'model/fc1/g', shape: [3], data: Float32Array.from([0.1, 0.2, 0.3]) },
  { name: 'optimizer/fc1/v/m', shape: [2, 3], data: Float32Array.from([1e-8, 0, 0, 0, 0, -1e30]) }
]

async function written(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fts-ckpt-'))
  return (await writeCheckpoint(dir, checkpointName(3), state, tensors)).path
}

describe('checkpoints', () => {
  it('round-trip every tensor bit for bit with the state, leaving no temporary behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fts-ckpt-'))
    const { path, bytes } = await writeCheckpoint(dir, checkpointName(3), state, tensors)
    expect(path).toBe(join(dir, 'epoch-0003'))
    expect(await readdir(dir)).toEqual(['epoch-0003'])
    const sizes = (await stat(join(path, 'tensors.bin'))).size + (await stat(join(path, 'manifest.json'))).size
    expect(bytes).toBe(sizes)
    const loaded = await loadCheckpoint(path)
    expect(loaded.state).toEqual(state)
    for (const t of tensors) {
      const got = loaded.tensors.get(t.name)
      expect(got?.shape).toEqual(t.shape)
      expect(Array.from(got?.data ?? [])).toEqual(Array.from(t.data))
    }
    const onlyModel = await loadCheckpoint(path, (name) => name.startsWith('model/'))
    expect([...onlyModel.tensors.keys()]).toEqual(['model/fc1/v', 'model/fc1/g'])
    // Writing the same name again replaces it.
    await writeCheckpoint(dir, checkpointName(3), { ...state, globalStep: 99 }, tensors)
    expect((await loadCheckpoint(path)).state.globalStep).toBe(99)
  })

  it('a truncated tensor file is an error naming the file', async () => {
    const path = await written()
    await truncate(join(path, 'tensors.bin'), 20)
    await expect(loadCheckpoint(path)).rejects.toThrow(/tensors\.bin.*truncated: 20 of 60 bytes/)
  })

  it('a flipped byte fails the checksum of the tensor holding it', async () => {
    const path = await written()
    const bin = join(path, 'tensors.bin')
    const bytes = await readFile(bin)
    bytes[26] ^= 0xff // inside model/fc1/g (bytes 24..35)
    await writeFile(bin, bytes)
    await expect(loadCheckpoint(path)).rejects.toThrow(/tensors\.bin: tensor model\/fc1\/g fails its checksum/)
  })

  it('a truncated or missing manifest is an error naming it', async () => {
    const path = await written()
    const manifest = join(path, 'manifest.json')
    await truncate(manifest, 40)
    await expect(loadCheckpoint(path)).rejects.toThrow(new RegExp(`${manifest.replace(/[.]/g, '\\.')}: corrupt or truncated JSON`))
    await expect(loadCheckpoint(join(path, 'nope'))).rejects.toThrow(/manifest\.json: missing/)
  })

  it('removes unfinished (.tmp) checkpoint directories', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fts-ckpt-'))
    await writeCheckpoint(dir, checkpointName(1), state, tensors)
    await writeFile(join(dir, 'epoch-0002.tmp'), 'half')
    await removeUnfinishedCheckpoints(dir)
    expect(await readdir(dir)).toEqual(['epoch-0001'])
  })
})

describe('deterministic runs and resume (cpu)', () => {
  let root = ''
  let input: (name: string, extra?: Partial<TrainerSpecInput>) => TrainerSpecInput = () => {
    throw new Error('not set up')
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'fts-resume-'))
    // Tiny on purpose: the cpu backend runs VGG11's frozen convs at ~3 images/s.
    const images = await writeImageFolder(join(root, 'images'), { classes: 2, perClass: 3, size: 32, format: 'png', seed: 9 })
    const items = images.map((image, i) => ({ path: image.path, label: image.label === 'class-0' ? 0 : 1, split: i % 3 === 2 ? ('validation' as const) : ('train' as const) }))
    input = (name, extra = {}) => ({
      runId: name,
      // Dropout, WN, AdamW with decay, warm-up + cosine and augmentation: every source of
      // randomness and every piece of optimizer state is in play.
      model: { depth: 11, inputSize: 32, numClasses: 2, fcWidth: 16, dropout: 0.5, weightNorm: ['fc1', 'predictions'], trainable: ['fc1', 'fc2', 'predictions'], lrMultipliers: { fc2: 0.5 } },
      weights: null,
      data: { items, classNames: ['class-0', 'class-1'] },
      optimizer: { kind: 'adamw', learningRate: 1e-3, weightDecay: 0.05 },
      schedule: { kind: 'cosine', warmupEpochs: 1 },
      batchSize: 2,
      epochs: 2,
      seed: 21,
      earlyStopping: null,
      classWeights: 'balanced',
      augmentation: { flip: true, crop: 2, rotationDegrees: 0, brightness: 0.2, contrast: 0 },
      checkpointDir: join(root, name),
      backend: 'cpu',
      ...extra
    })
  })

  async function run(spec: TrainerSpecInput, stopAfter?: (m: TrainerMessage) => boolean) {
    const messages: TrainerMessage[] = []
    let stop = false
    const result = await train(spec, {
      onProgress: (m) => {
        messages.push(m)
        if (stopAfter?.(m)) stop = true
      },
      shouldStop: () => stop
    })
    return { result, messages }
  }

  const stepLosses = (messages: TrainerMessage[]) => messages.flatMap((m) => (m.type === 'step' ? [m.loss] : []))

  it('the same seed gives the same losses; another seed does not', async () => {
    const a = await run(input('seed-a'), (m) => m.type === 'epoch')
    const b = await run(input('seed-b'), (m) => m.type === 'epoch')
    const c = await run(input('seed-c', { seed: 22 }), (m) => m.type === 'step')
    try {
      expect(a.result.status).toBe('cancelled')
      expect(stepLosses(a.messages)).toHaveLength(2)
      expect(stepLosses(b.messages)).toEqual(stepLosses(a.messages))
      expect(a.result.history[0].trainLoss).toBe(b.result.history[0].trainLoss)
      expect(stepLosses(c.messages)[0]).not.toBe(stepLosses(a.messages)[0])
    } finally {
      for (const r of [a, b, c]) r.result.model.dispose()
    }
  })

  it("resuming from epoch 1's checkpoint ends with the uninterrupted run's weights and optimizer state", async () => {
    const full = await run(input('full'))
    const resumed = await run(input('resumed', { resumeFrom: join(root, 'full', 'epoch-0001') }))
    try {
      expect(full.result.status).toBe('completed')
      expect(resumed.messages.find((m) => m.type === 'started')).toMatchObject({ startEpoch: 1 })
      expect(resumed.messages.filter((m) => m.type === 'epoch').map((m) => (m.type === 'epoch' ? m.epoch : 0))).toEqual([2])
      // Same losses step by step in epoch 2, and the history carried over.
      expect(stepLosses(resumed.messages)).toEqual(stepLosses(full.messages).slice(2))
      expect(resumed.result.history).toEqual(full.result.history)
      const a = await loadCheckpoint(join(root, 'full', 'epoch-0002'))
      const b = await loadCheckpoint(join(root, 'resumed', 'epoch-0002'))
      expect([...b.tensors.keys()]).toEqual([...a.tensors.keys()])
      expect([...a.tensors.keys()].some((k) => k === 'optimizer/fc1/v/m')).toBe(true)
      for (const [name, t] of a.tensors) {
        const other = b.tensors.get(name)?.data ?? new Float32Array()
        const worst = t.data.reduce((m, v, i) => Math.max(m, Math.abs(v - other[i])), 0)
        expect(worst, name).toBeLessThanOrEqual(1e-6)
      }
      expect(b.state.optimizer.step).toBe(a.state.optimizer.step)
    } finally {
      full.result.model.dispose()
      resumed.result.model.dispose()
    }
  })

  it('resuming from a corrupt checkpoint fails naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fts-ckpt-'))
    const path = (await writeCheckpoint(dir, checkpointName(1), state, tensors)).path
    await truncate(join(path, 'tensors.bin'), 8)
    await expect(train(input('corrupt', { resumeFrom: path }))).rejects.toThrow(new RegExp(`${join(path, 'tensors.bin').replace(/[.]/g, '\\.')}: truncated`))
  })
})
