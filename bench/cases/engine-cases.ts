/**
 * Engine benchmark cases: VGG16 inference and training throughput on the backend the trainer
 * would pick (`selectBackend`: wasm here, with the wasm Conv2D gradients installed).
 *
 * Every case builds a freshly initialized model (no pretrained weights), feeds random or
 * synthetic data (the fine-tune cases: JPEG files through the real trainer, one epoch), runs untimed warm-up steps first (XNNPACK set-up, optimizer slot creation) and
 * times only the steps after them. Training steps are plain `tf.variableGrads` + Adam
 * `applyGradients` on softmax cross-entropy, like the trainer's step without its data pipeline
 * and per-layer learning rates.
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import type { BenchCase, BenchResult } from '../bench-case'
import { selectBackend } from '../../src/core/engine/select-backend'
import { AUGMENTATION_OFF } from '../../src/core/engine/augment'
import { applyLayersForTraining } from '../../src/core/engine/relu-conv'
import { train } from '../../src/core/engine/trainer'
import { trainerModelSpec, type TrainerSpecInput } from '../../src/core/engine/trainer-spec'
import { makePlan } from '../../src/core/model/layer-plan'
import { buildVgg, type VggOptions } from '../../src/core/model/vgg'
import { writeImageFolder } from '../../test/generators/images'
import { seededRandom } from '../../src/core/seeded-random'

const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/**
 * Runs a case, turning a failure into a result with `error` instead of throwing: bench/run.ts
 * stops at the first error and writes nothing, and VGG16 @224 training does not fit the wasm
 * heap (4 GiB, wasm32) here. After such an abort the wasm backend is unusable in this process.
 */
async function guarded(name: string, run: () => Promise<BenchResult>): Promise<BenchResult> {
  try {
    return await run()
  } catch (error) {
    return { case: name, backend: tf.getBackend(), error: error instanceof Error ? error.message : String(error) }
  }
}

/** Disposal after a failed step must not hide the failure. */
function bestEffort(release: () => void): void {
  try {
    release()
  } catch {
    // the backend already failed; the original error is reported
  }
}

/** Activates the backend the trainer would use (wasm conv gradients included) and names it. */
async function activateBackend(): Promise<string> {
  const selection = await selectBackend()
  if (selection.backend === 'wasm' && !selection.wasmConvGradients) throw new Error('wasm selected without its conv gradients')
  return selection.backend
}

/** Random NHWC inputs and one-hot labels, made before any timing. */
function randomBatch(batch: number, inputSize: number, numClasses: number, seed: number): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const random = seededRandom(seed)
  const labels = Int32Array.from({ length: batch }, () => Math.floor(random() * numClasses))
  return tf.tidy(() => ({
    x: tf.randomNormal([batch, inputSize, inputSize, 3], 0, 1, 'float32', seed) as tf.Tensor4D,
    y: tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses).toFloat() as tf.Tensor2D
  }))
}

function timedBuild(options: VggOptions): { model: tf.LayersModel; buildSeconds: number } {
  const started = performance.now()
  const model = buildVgg(options)
  return { model, buildSeconds: round((performance.now() - started) / 1000) }
}

function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  // A LayerVariable's value is the tf.Variable that gradients are taken against.
  return model.trainableWeights.map((w) => w.read() as tf.Variable)
}

/** One optimizer step; returns the loss (reading it also waits for the step to finish). */
function trainStep(model: tf.LayersModel, optimizer: tf.Optimizer, variables: tf.Variable[], x: tf.Tensor, y: tf.Tensor): number {
  const loss = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      // As the trainer computes a step (VGG's relu convs as one op each).
      const logits = applyLayersForTraining(model.layers.filter((l) => l.getClassName() !== 'InputLayer'), x) as tf.Tensor2D
      return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar
    }, variables)
    optimizer.applyGradients(grads)
    return value
  })
  try {
    const value = loss.dataSync()[0]
    if (!Number.isFinite(value)) throw new Error(`training diverged (loss ${value})`)
    return value
  } finally {
    loss.dispose()
  }
}

function forwardStep(model: tf.LayersModel, x: tf.Tensor): void {
  const logits = tf.tidy(() => model.apply(x, { training: false }) as tf.Tensor)
  logits.dataSync()
  logits.dispose()
}

/** Runs `warmup` untimed then `timed` timed calls of `step`; returns each timed step's ms. */
function timeSteps(warmup: number, timed: number, step: (i: number) => void): number[] {
  for (let i = 0; i < warmup; i++) step(i)
  const times: number[] = []
  for (let i = 0; i < timed; i++) {
    const started = performance.now()
    step(warmup + i)
    times.push(performance.now() - started)
  }
  return times
}

function stepMeasures(batch: number, times: readonly number[]): { imagesPerSec: number; msPerStep: number; medianMsPerStep: number; timedSteps: number } {
  const total = times.reduce((a, b) => a + b, 0)
  return {
    imagesPerSec: round((batch * times.length * 1000) / total),
    msPerStep: Math.round(total / times.length),
    medianMsPerStep: Math.round(median(times)),
    timedSteps: times.length
  }
}

interface ForwardConfig {
  inputSize: number
  batch: number
  numClasses: number
  fcWidth?: number
  warmup: number
  timed: number
}

async function runForward(name: string, config: ForwardConfig): Promise<BenchResult> {
  const backend = await activateBackend()
  const { model, buildSeconds } = timedBuild({ depth: 16, inputSize: config.inputSize, numClasses: config.numClasses, fcWidth: config.fcWidth })
  const { x, y } = randomBatch(config.batch, config.inputSize, config.numClasses, 1)
  try {
    const times = timeSteps(config.warmup, config.timed, () => forwardStep(model, x))
    return { case: name, backend, ...stepMeasures(config.batch, times), batch: config.batch, buildSeconds }
  } finally {
    bestEffort(() => tf.dispose([x, y]))
    bestEffort(() => model.dispose())
  }
}

interface TrainConfig extends ForwardConfig {
  weightNorm: boolean
  /** Adam (the trainer's usual choice), or plain SGD where Adam's two slots per weight do not fit the wasm heap. */
  optimizer: 'adam' | 'sgd'
}

function makeOptimizer(kind: TrainConfig['optimizer']): tf.Optimizer {
  return kind === 'adam' ? tf.train.adam(1e-4) : tf.train.sgd(1e-3)
}

interface TrainingSetup {
  step: () => void
  trainableParams: number
  buildSeconds: number
  dispose: () => void
}

/** A model, an Adam optimizer and a random batch, ready to step. */
function setUpTraining(config: TrainConfig, seed: number): TrainingSetup {
  const { model, buildSeconds } = timedBuild({
    depth: 16,
    inputSize: config.inputSize,
    numClasses: config.numClasses,
    fcWidth: config.fcWidth,
    weightNorm: () => config.weightNorm,
    trainable: () => true
  })
  const optimizer = makeOptimizer(config.optimizer)
  const { x, y } = randomBatch(config.batch, config.inputSize, config.numClasses, seed)
  const variables = trainableVariables(model)
  return {
    step: () => void trainStep(model, optimizer, variables, x, y),
    trainableParams: variables.reduce((n, v) => n + v.size, 0),
    buildSeconds,
    dispose: () => {
      bestEffort(() => tf.dispose([x, y]))
      bestEffort(() => optimizer.dispose())
      bestEffort(() => model.dispose())
    }
  }
}

async function measureTraining(config: TrainConfig): Promise<{ backend: string; times: number[]; buildSeconds: number; trainableParams: number }> {
  const backend = await activateBackend()
  const setup = setUpTraining(config, 2)
  try {
    const times = timeSteps(config.warmup, config.timed, setup.step)
    return { backend, times, buildSeconds: setup.buildSeconds, trainableParams: setup.trainableParams }
  } finally {
    setup.dispose()
  }
}

const TRAIN_32: TrainConfig = { inputSize: 32, batch: 32, numClasses: 10, fcWidth: 512, warmup: 2, timed: 12, weightNorm: false, optimizer: 'adam' }
const TRAIN_TARGET = 18

/** train-32's one-replica step time in this process, if it ran: train-32-wn also reports against it. */
let train32MsPerStep: number | null = null

export const forward32Case: BenchCase = {
  name: 'forward-32',
  description: 'VGG16 @32 (fc 512), batch 32, inference',
  async run() {
    return runForward(this.name, { inputSize: 32, batch: 32, numClasses: 10, fcWidth: 512, warmup: 2, timed: 10 })
  }
}

const TRAIN_32_IMAGES = 320
const TRAIN_32_SKIPPED_STEPS = 2

interface BenchImages {
  dir: string
  items: TrainerSpecInput['data']['items']
  classNames: string[]
}

const imageSets = new Map<string, Promise<BenchImages>>()

/** Generated image files a case trains on (all in the train split), written once per process. */
function imageSet(name: string, options: { classes: number; perClass: number; size: number; format: 'png' | 'jpeg'; seed: number }): Promise<BenchImages> {
  let set = imageSets.get(name)
  if (set === undefined) {
    set = (async () => {
      const dir = await mkdtemp(join(tmpdir(), `fts-bench-${name}-`))
      const images = await writeImageFolder(join(dir, 'images'), options)
      const classNames = [...new Set(images.map((i) => i.label))]
      return { dir, classNames, items: images.map((i) => ({ path: i.path, label: classNames.indexOf(i.label), split: 'train' as const })) }
    })()
    imageSets.set(name, set)
  }
  return set
}

/**
 * One epoch of the real trainer over 320 images, VGG16 @32 with every layer training (no WN,
 * Adam, batch 32), on `replicas` replicas; the step times after the first two (set-up) count.
 */
async function trainerSteps(replicas: number | 'auto'): Promise<{ backend: string; replicas: number; stepMs: number[]; trainableParams: number }> {
  const data = await imageSet('train-32', { classes: TRAIN_32.numClasses, perClass: TRAIN_32_IMAGES / TRAIN_32.numClasses, size: 32, format: 'png', seed: 7 })
  const plan = makePlan('everything', { numClasses: 10, inputSize: 32, fcWidth: TRAIN_32.fcWidth, weightNorm: 'none' })
  const stepMs: number[] = []
  let used = 1
  let trainableParams = 0
  const result = await train(
    {
      runId: `train-32-${replicas}`,
      model: trainerModelSpec(plan),
      weights: null,
      data: { items: data.items, classNames: data.classNames },
      optimizer: { kind: 'adam', learningRate: 1e-4 },
      schedule: { kind: 'constant', warmupEpochs: 0 },
      batchSize: TRAIN_32.batch,
      epochs: 1,
      seed: 1,
      earlyStopping: null,
      classWeights: 'none',
      augmentation: AUGMENTATION_OFF,
      checkpointDir: join(data.dir, `run-${replicas}`),
      replicas
    },
    {
      onProgress: (m) => {
        if (m.type === 'started') {
          used = m.replicas
          trainableParams = m.trainableParams
        }
        if (m.type === 'step' && m.step > TRAIN_32_SKIPPED_STEPS) stepMs.push((1000 * TRAIN_32.batch) / m.imagesPerSec)
      }
    }
  )
  result.model.dispose()
  return { backend: result.backend, replicas: used, stepMs, trainableParams }
}

export const train32Case: BenchCase = {
  name: 'train-32',
  description: 'VGG16 @32 (fc 512), batch 32, every layer training, no WN, Adam: the trainer on one replica per core (data-parallel), and on one',
  target: { text: `>= ${TRAIN_TARGET} images/s (PyTorch CPU here)`, met: (r) => (r.imagesPerSec ?? 0) >= TRAIN_TARGET },
  async run() {
    const parallel = await trainerSteps('auto')
    const single = await trainerSteps(1)
    const measures = stepMeasures(TRAIN_32.batch, parallel.stepMs)
    const one = stepMeasures(TRAIN_32.batch, single.stepMs)
    train32MsPerStep = one.msPerStep
    return {
      case: this.name,
      backend: parallel.backend,
      ...measures,
      replicas: parallel.replicas,
      oneReplicaImagesPerSec: one.imagesPerSec,
      oneReplicaMsPerStep: one.msPerStep,
      batch: TRAIN_32.batch,
      optimizer: 'adam',
      trainableParams: parallel.trainableParams
    }
  }
}

/**
 * WN overhead: a plain and a WN model step alternately (plain, WN, plain, WN, ...) in this
 * process, so load from other jobs hits both alike; `wnOverheadPct` compares their total step
 * times. `vsTrain32CasePct` compares with the train-32 case when it ran earlier in this process.
 */
export const train32WnCase: BenchCase = {
  name: 'train-32-wn',
  description: 'VGG16 @32 (fc 512), batch 32, every layer training with WN, Adam; overhead vs plain steps interleaved',
  target: { text: '<= 5% WN overhead (wnOverheadPct)', met: (r) => typeof r.wnOverheadPct === 'number' && r.wnOverheadPct <= 5 },
  async run() {
    const backend = await activateBackend()
    const plain = setUpTraining(TRAIN_32, 2)
    const wn = setUpTraining({ ...TRAIN_32, weightNorm: true }, 2)
    try {
      for (let i = 0; i < TRAIN_32.warmup; i++) {
        plain.step()
        wn.step()
      }
      const plainTimes: number[] = []
      const wnTimes: number[] = []
      for (let i = 0; i < TRAIN_32.timed; i++) {
        plainTimes.push(...timeSteps(0, 1, plain.step))
        wnTimes.push(...timeSteps(0, 1, wn.step))
      }
      const measures = stepMeasures(TRAIN_32.batch, wnTimes)
      const baseline = stepMeasures(TRAIN_32.batch, plainTimes)
      const sum = (values: number[]) => values.reduce((a, b) => a + b, 0)
      return {
        case: this.name,
        backend,
        ...measures,
        batch: TRAIN_32.batch,
        optimizer: 'adam',
        wnOverheadPct: round((100 * (sum(wnTimes) - sum(plainTimes))) / sum(plainTimes), 1),
        medianOverheadPct: round((100 * (measures.medianMsPerStep - baseline.medianMsPerStep)) / baseline.medianMsPerStep, 1),
        plainMsPerStep: baseline.msPerStep,
        plainImagesPerSec: baseline.imagesPerSec,
        ...(train32MsPerStep === null ? {} : { vsTrain32CasePct: round((100 * (measures.msPerStep - train32MsPerStep)) / train32MsPerStep, 1) }),
        trainableParams: wn.trainableParams
      }
    } finally {
      plain.dispose()
      wn.dispose()
    }
  }
}

export const forward224Case: BenchCase = {
  name: 'forward-224',
  description: 'VGG16 @224 (fc 4096, 1000 classes), batch 8, inference',
  async run() {
    return runForward(this.name, { inputSize: 224, batch: 8, numClasses: 1000, warmup: 1, timed: 3 })
  }
}

export const train224Case: BenchCase = {
  name: 'train-224',
  description: 'VGG16 @224 (fc 4096, 1000 classes), batch 8, every layer training, no WN, SGD (2 timed steps)',
  async run() {
    const config: TrainConfig = { inputSize: 224, batch: 8, numClasses: 1000, warmup: 1, timed: 2, weightNorm: false, optimizer: 'sgd' }
    const m = await measureTraining(config)
    return { case: this.name, backend: m.backend, ...stepMeasures(config.batch, m.times), batch: config.batch, optimizer: config.optimizer, trainableParams: m.trainableParams, buildSeconds: m.buildSeconds }
  }
}

const FINETUNE_IMAGES = 32
const FINETUNE_BATCH = 16
const FINETUNE_CLASSES = 4
/** A new 512-wide classifier (see runFinetune). */
const FINETUNE_FC_WIDTH = 512

/** The uncached case's result in this process, if it ran: the cached case compares with it. */
let uncached: BenchResult | null = null
const CACHE_TARGET = 5

/**
 * The real trainer (`train`, in this process) with the 'last-block-head' plan at 224 (block5 +
 * classifier train with WN, blocks 1-4 frozen; random init) over a fixed set of images, with or
 * without the feature cache, for two epochs: the headline is the second epoch (`epochSeconds`;
 * the first also pays for XNNPACK set-up and heap growth: `firstEpochSeconds`). Uncached, every
 * step runs blocks 1-4 again (outside the gradient tape); cached, they ran once per image before
 * the first epoch (`cacheSeconds`, reported apart: paid once per run, not per epoch).
 * The classifier is a new 512-wide one (`fcWidth: 512`, so fc1 is 25088 x 512): ImageNet's
 * 4096-wide fc1 (25088 x 4096, 411 MB a copy) with WN, its gradient and Adam's slots do not fit
 * the wasm heap next to everything else (tfjs-backend-wasm also fails on tensors it places past
 * 2 GB). On tfjs-node there is no such limit.
 */
async function runFinetune(name: string, featureCache: 'auto' | 'off'): Promise<BenchResult> {
  const data = await imageSet('finetune-224', { classes: FINETUNE_CLASSES, perClass: FINETUNE_IMAGES / FINETUNE_CLASSES, size: 224, format: 'jpeg', seed: 5 })
  const plan = makePlan('last-block-head', { numClasses: FINETUNE_CLASSES, inputSize: 224, fcWidth: FINETUNE_FC_WIDTH })
  let cacheStarted: number | null = null
  let cacheSeconds = 0
  const epochSeconds: number[] = []
  let trainableParams = 0
  let cacheNote = ''
  const result = await train(
    {
      runId: name,
      model: trainerModelSpec(plan),
      weights: null,
      data: { items: data.items, classNames: data.classNames },
      optimizer: { kind: 'adam', learningRate: 1e-4 },
      schedule: { kind: 'constant', warmupEpochs: 0 },
      batchSize: FINETUNE_BATCH,
      epochs: 2,
      seed: 1,
      earlyStopping: null,
      classWeights: 'none',
      augmentation: AUGMENTATION_OFF,
      checkpointDir: join(data.dir, name),
      featureCache
    },
    {
      onProgress: (m) => {
        if (m.type === 'preparing' && m.stage === 'caching-features') cacheStarted ??= performance.now()
        if (m.type === 'started') {
          if (cacheStarted !== null) cacheSeconds = (performance.now() - cacheStarted) / 1000
          trainableParams = m.trainableParams
          cacheNote = m.featureCache.reason
        }
        if (m.type === 'epoch') epochSeconds.push(m.seconds)
      }
    }
  )
  result.model.dispose()
  return {
    case: name,
    backend: result.backend,
    imagesPerSec: round(FINETUNE_IMAGES / epochSeconds[1]),
    epochSeconds: round(epochSeconds[1]),
    firstEpochSeconds: round(epochSeconds[0]),
    ...(featureCache === 'auto' ? { cacheSeconds: round(cacheSeconds) } : {}),
    images: FINETUNE_IMAGES,
    batch: FINETUNE_BATCH,
    optimizer: 'adam',
    trainableParams,
    featureCache: cacheNote
  }
}

export const finetune224UncachedCase: BenchCase = {
  name: 'finetune-224-uncached',
  description: `VGG16 @224 'last-block-head' plan (new 512-wide classifier, WN, Adam), ${FINETUNE_IMAGES} images, two epochs of the trainer, batch ${FINETUNE_BATCH}, no feature cache`,
  async run() {
    uncached = await runFinetune(this.name, 'off')
    return uncached
  }
}

export const finetune224CachedCase: BenchCase = {
  name: 'finetune-224-cached',
  description: `the same with the feature cache (blocks 1-4 once per image before the epoch); speedup vs finetune-224-uncached when it ran first`,
  target: { text: `epoch >= ${CACHE_TARGET}x faster than uncached (speedup)`, met: (r) => typeof r.speedup === 'number' && r.speedup >= CACHE_TARGET },
  async run() {
    const r = await runFinetune(this.name, 'auto')
    const seconds = (result: BenchResult | null, key: string) => (typeof result?.[key] === 'number' ? result[key] : NaN)
    const speedup = seconds(uncached, 'epochSeconds') / seconds(r, 'epochSeconds')
    // The first epoch with the cache's one-off cost added, against the first uncached epoch.
    const firstEpochSpeedup = seconds(uncached, 'firstEpochSeconds') / (seconds(r, 'firstEpochSeconds') + seconds(r, 'cacheSeconds'))
    return Number.isFinite(speedup) ? { ...r, speedup: round(speedup, 1), firstEpochSpeedup: round(firstEpochSpeedup, 1) } : r
  }
}

/** The cases as bench/run.ts runs them: a failing case reports `error` instead of ending the run. */
// train-224 last: when it runs out of the wasm heap, wasm is unusable for the rest of the process.
export const ENGINE_CASES: BenchCase[] = [forward32Case, train32Case, train32WnCase, forward224Case, finetune224UncachedCase, finetune224CachedCase, train224Case].map((c) => ({
  ...c,
  run: () => guarded(c.name, () => c.run())
}))
