/** The small image set and spec the trainer's tests share (3 classes x 8 images at 32 px). */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { beforeAll } from 'vitest'
import { writeImageFolder, type GeneratedImage } from '../../../test/generators/images'
import { AUGMENTATION_OFF } from './augment'
import { train, type TrainResult } from './trainer'
import type { TrainerMessage } from './trainer-messages'
import type { TrainerSpecInput } from './trainer-spec'

export const CLASSES = ['class-0', 'class-1', 'class-2']

/**
 * What every quick test run shares: random init, constant rate, no augmentation or early
 * stopping, wasm, one replica (data-parallel runs have their own tests; worker threads would
 * only slow these small runs down).
 */
export const QUICK_RUN = {
  replicas: 1,
  weights: null,
  schedule: { kind: 'constant', warmupEpochs: 0 },
  earlyStopping: null,
  classWeights: 'none',
  augmentation: AUGMENTATION_OFF,
  backend: 'wasm'
} satisfies Partial<TrainerSpecInput>

export interface Recorded {
  result: TrainResult
  messages: TrainerMessage[]
  tensorsAtEpochEnd: number[]
}

/** Registers the images' creation before the file's tests, and returns helpers bound to them. */
export function trainerFixture() {
  const state: { root: string; items: TrainerSpecInput['data']['items'] } = { root: '', items: [] }

  beforeAll(async () => {
    state.root = await mkdtemp(join(tmpdir(), 'fts-trainer-'))
    const images = await writeImageFolder(join(state.root, 'images'), { classes: 3, perClass: 8, size: 32, format: 'png', seed: 3 })
    // 6 train + 2 validation images per class.
    state.items = images.map((image, i) => ({ path: image.path, label: CLASSES.indexOf(image.label), split: i % 8 >= 6 ? 'validation' : 'train' }))
  })

  function spec(overrides: Partial<TrainerSpecInput> & { name: string }): TrainerSpecInput {
    const { name, ...rest } = overrides
    return {
      runId: name,
      ...QUICK_RUN,
      model: { depth: 11, inputSize: 32, numClasses: 3, fcWidth: 32, dropout: 0, weightNorm: ['fc1', 'predictions'], trainable: ['fc1', 'fc2', 'predictions'], lrMultipliers: {} },
      data: { items: state.items, classNames: CLASSES },
      optimizer: { kind: 'adam', learningRate: 1e-3 },
      batchSize: 6,
      epochs: 4,
      seed: 11,
      checkpointDir: join(state.root, name),
      ...rest
    }
  }

  return { state, spec }
}

export async function record(input: TrainerSpecInput): Promise<Recorded> {
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

export function epochs(messages: TrainerMessage[]) {
  return messages.flatMap((m) => (m.type === 'epoch' ? [m] : []))
}

export function layerValues(model: tf.LayersModel, layer: string): Float32Array[] {
  return model.getLayer(layer).getWeights().map((w) => (w.dataSync() as Float32Array).slice())
}

export interface SmallRun {
  runId: string
  classes: string[]
  perClass: number
  /** Layers that train, all with WN. */
  trained: string[]
  dropout: number
  learningRate: number
  batchSize: number
  seed: number
}

/**
 * Writes `perClass` 32 px images per class under `root/images` and trains a VGG11 (fc 16) on
 * all of them for one epoch, checkpoints under `root/checkpoints`: the trained model that the
 * predict, evaluate and export tests read back.
 */
export async function trainSmallModel(root: string, run: SmallRun): Promise<{ images: GeneratedImage[]; result: TrainResult }> {
  const images = await writeImageFolder(join(root, 'images'), { classes: run.classes, perClass: run.perClass, size: 32 })
  const result = await train({
    runId: run.runId,
    ...QUICK_RUN,
    model: { depth: 11, inputSize: 32, numClasses: run.classes.length, fcWidth: 16, dropout: run.dropout, weightNorm: run.trained, trainable: run.trained, lrMultipliers: {} },
    data: { classNames: run.classes, items: images.map((i) => ({ path: i.path, label: run.classes.indexOf(i.label), split: 'train' as const })) },
    optimizer: { kind: 'adam', learningRate: run.learningRate },
    batchSize: run.batchSize,
    epochs: 1,
    seed: run.seed,
    checkpointDir: join(root, 'checkpoints')
  })
  return { images, result }
}
