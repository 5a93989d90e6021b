import { mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { writeImageFolder } from '../../../test/generators/images'
import type { TrainerMessage } from './trainer-messages'
import { forkTrainer, type TrainerHandle } from './trainer-process'
import type { TrainerSpecInput } from './trainer-spec'

let root = ''
let items: TrainerSpecInput['data']['items'] = []
const CLASSES = ['class-0', 'class-1', 'class-2']

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fts-trainer-process-'))
  const images = await writeImageFolder(join(root, 'images'), { classes: 3, perClass: 4, size: 32, format: 'png', seed: 4 })
  items = images.map((image, i) => ({ path: image.path, label: CLASSES.indexOf(image.label), split: i % 4 === 3 ? 'validation' : 'train' }))
})

function spec(name: string, extra: Partial<TrainerSpecInput> = {}): TrainerSpecInput {
  return {
    runId: name,
    model: { depth: 11, inputSize: 32, numClasses: 3, fcWidth: 16, dropout: 0.5, weightNorm: ['predictions'], trainable: ['fc1', 'fc2', 'predictions'], lrMultipliers: {} },
    weights: null,
    data: { items, classNames: CLASSES },
    optimizer: { kind: 'sgd', learningRate: 1e-3, momentum: 0.9 },
    schedule: { kind: 'constant', warmupEpochs: 0 },
    batchSize: 3,
    epochs: 2,
    seed: 1,
    earlyStopping: null,
    classWeights: 'none',
    augmentation: { flip: true, crop: 2, rotationDegrees: 0, brightness: 0, contrast: 0 },
    checkpointDir: join(root, name),
    backend: 'wasm',
    ...extra
  }
}

/** Forks a trainer, starts `input`, and collects every message until the child exits. */
async function runChild(input: unknown, react?: (message: TrainerMessage, handle: TrainerHandle) => void): Promise<{ messages: TrainerMessage[]; code: number | null }> {
  const handle = forkTrainer()
  const messages: TrainerMessage[] = []
  handle.onMessage((m) => {
    messages.push(m)
    react?.(m, handle)
  })
  handle.send({ type: 'start', spec: input as TrainerSpecInput })
  const { code } = await handle.exited
  return { messages, code }
}

const types = (messages: TrainerMessage[]) => messages.map((m) => m.type).filter((t) => t !== 'preparing')

describe('trainer child process', () => {
  it('runs a 2-epoch spec: step, epoch and checkpoint messages in order, pause and resume, then finished and exit 0', async () => {
    let paused = false
    const { messages, code } = await runChild(spec('full'), (m, handle) => {
      if (m.type === 'step' && m.epoch === 1 && m.step === 1 && !paused) {
        paused = true
        handle.send({ type: 'pause' })
      }
      // 'paused' comes once the loop has stopped between steps; it stays stopped until resumed.
      if (m.type === 'paused') setTimeout(() => handle.send({ type: 'resume' }), 300)
    })
    expect(code).toBe(0)
    const epochMessages = ['step', 'step', 'step', 'epoch', 'checkpoint']
    const withoutPause = types(messages).filter((t) => t !== 'paused' && t !== 'resumed')
    expect(withoutPause).toEqual(['started', ...epochMessages, ...epochMessages, 'finished'])
    // Paused after the first step: nothing trains until resumed.
    const t = types(messages)
    expect(t.slice(t.indexOf('paused'), t.indexOf('paused') + 2)).toEqual(['paused', 'resumed'])
    expect(messages.find((m) => m.type === 'started')).toMatchObject({ backend: 'wasm', stepsPerEpoch: 3, trainImages: 9, validationImages: 3 })
    const checkpoints = messages.flatMap((m) => (m.type === 'checkpoint' ? [m] : []))
    expect(checkpoints.map((c) => [c.epoch, c.step, c.path])).toEqual([
      [1, 3, join(root, 'full', 'epoch-0001')],
      [2, 6, join(root, 'full', 'epoch-0002')]
    ])
    expect(checkpoints[0].bytes).toBeGreaterThan(4 * 9_000_000)
    expect(messages[messages.length - 1]).toMatchObject({ type: 'finished', status: 'completed', epochsCompleted: 2, finalCheckpoint: join(root, 'full', 'epoch-0002') })
    expect((await readdir(join(root, 'full'))).sort()).toEqual(['epoch-0001', 'epoch-0002'])
  })

  it('cancel after the first step: finished {cancelled}, exit 0, nothing written', async () => {
    // Batch 1: nine steps per epoch, so the cancel surely lands before the first epoch ends.
    const { messages, code } = await runChild(spec('cancel', { epochs: 5, batchSize: 1 }), (m, handle) => {
      if (m.type === 'step' && m.step === 1) handle.send({ type: 'cancel' })
    })
    expect(code).toBe(0)
    // The child may finish a step or two while the command crosses the pipe, never an epoch.
    const t = types(messages)
    expect(t[0]).toBe('started')
    expect(t[t.length - 1]).toBe('finished')
    const steps = t.slice(1, -1)
    expect(steps.every((type) => type === 'step')).toBe(true)
    expect(steps.length).toBeGreaterThanOrEqual(1)
    expect(steps.length).toBeLessThan(9)
    expect(messages[messages.length - 1]).toMatchObject({ type: 'finished', status: 'cancelled', epochsCompleted: 0, finalCheckpoint: null })
    expect(await readdir(join(root, 'cancel')).catch(() => [])).toEqual([])
  })

  it('a bad spec fails naming the field, exit 1', async () => {
    const { messages, code } = await runChild({ ...spec('bad'), batchSize: 0 })
    expect(code).toBe(1)
    expect(messages).toHaveLength(1)
    expect(messages[0]).toMatchObject({ type: 'failed', message: expect.stringMatching(/batchSize/) })
  })

  it('an image that does not decode fails naming the file, exit 1', async () => {
    const bad = join(root, 'not-an-image.jpg')
    await writeFile(bad, 'text, not a JPEG')
    const { messages, code } = await runChild(spec('undecodable', { data: { items: [...items, { path: bad, label: 1, split: 'train' }], classNames: CLASSES } }))
    expect(code).toBe(1)
    const failed = messages[messages.length - 1]
    expect(failed).toMatchObject({ type: 'failed', message: expect.stringContaining(bad) })
    expect(types(messages)).toEqual(['failed'])
  })
})
