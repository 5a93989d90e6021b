/**
 * The training loop: builds the VGG a spec describes, decodes the images once, and trains with
 * softmax cross-entropy on the logits, an optimizer with per-layer learning-rate multipliers,
 * a warm-up + constant/step/cosine schedule, augmentation, per-epoch validation, checkpoints
 * and early stopping. Runs in whatever process calls it (normally the trainer child process).
 * The frozen layers at the input run outside the gradient tape, or once per image with the
 * feature cache (feature-cache.ts); on the wasm backend each batch is shared among one model
 * replica per core (data-parallel.ts).
 *
 * Determinism. Every random choice is a pure function of (spec.seed, epoch, step): the data
 * order (Fisher-Yates from a seeded PRNG), augmentation (per-image parameters from a seeded
 * PRNG), dropout masks (each Dropout layer gets a fresh seed before every step: tf.dropout is
 * seeded through tf.randomUniform's alea generator), and the initialization of every layer not
 * taken from the weights file (seeded He/Glorot-uniform, bias 0; see seededInit).
 * So the same spec gives the same run on the same backend with the same number of replicas
 * (`replicas: 'auto'` follows the machine's cores), and resuming from epoch k's
 * checkpoint gives the weights of the uninterrupted run (tested on cpu). Not deterministic:
 * results across backends (cpu, wasm/XNNPACK and TensorFlow sum in different orders, so the
 * same spec drifts apart at float precision and beyond), timing fields (seconds, imagesPerSec),
 * and possibly runs on multi-threaded kernels (tfjs-node, tfjs-node-gpu/cuDNN).
 *
 * Early stopping. With `earlyStopping` set, training stops once `patience` epochs pass without
 * the metric improving (strictly), and the model then ends with the best epoch's weights,
 * re-read from that epoch's checkpoint (`finished.restoredBest`). Without it, the model ends
 * with the last epoch's weights and `bestEpoch` only reports which epoch was best by val_loss.
 */
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { channelNorm, isWeightNormLayer, type WeightNormLayer } from '../model/weight-norm'
import { loadVggWeights, type LoadedVggWeights } from '../weights/load-weights'
import { TORCHVISION_PREPROCESSING, type Preprocessing } from '../weights/vgg-weights'
import {
  checkpointName,
  loadCheckpoint,
  removeCheckpoint,
  removeUnfinishedCheckpoints,
  writeCheckpoint,
  type CheckpointState,
  type CheckpointTensor,
  type LoadedCheckpoint
} from './checkpoint'
import { classWeights } from './class-weights'
import { GradientExchange, replicaCount, ReplicaWorkers, shareImageSet, shareOf } from './data-parallel'
import { batchSlices, decodeImageSet, epochOrder, type ImageSet } from './data-loader'
import { buildFeatureStore, NetworkInputs, planFeatureCache, prefixOutputShape, type FeatureCachePlan, type InputSource } from './feature-cache'
import type { LayerwiseOptimizer } from './optimizer'
import { buildTrainingModel, disposeGradients, modelVariables, Replica, restoreModelVariables } from './replica'
import { learningRateAt } from './lr-schedule'
import { selectBackend } from './select-backend'
import type { EpochMetrics, TrainerMessage, TrainerStatus, WeightNormStats } from './trainer-messages'
import { parseTrainerSpec, type EarlyStoppingSpec, type TrainerSpec, type TrainerSpecInput } from './trainer-spec'
import type { BackendName } from '../../shared/dto'

export interface TrainerHooks {
  onProgress(message: TrainerMessage): void
  /** Polled between steps: true ends the run after the current step (status 'cancelled'). */
  shouldStop(): boolean
  /** Awaited between steps: resolves at once unless the run is paused. */
  waitWhilePaused(): Promise<void>
}

export interface TrainResult {
  status: TrainerStatus
  bestEpoch: number
  history: EpochMetrics[]
  restoredBest: boolean
  finalCheckpoint: string | null
  backend: BackendName
  /** The trained model (final weights as documented above). The caller disposes it. */
  model: tf.LayersModel
}

function weightNormStats(model: tf.LayersModel): WeightNormStats[] {
  return model.layers.filter(isWeightNormLayer).map((layer: WeightNormLayer) => {
    const g = layer.gParam.read().dataSync() as Float32Array
    const norms = tf.tidy(() => channelNorm(layer.vParam.read()).dataSync() as Float32Array)
    let sum = 0
    let min = Infinity
    let max = -Infinity
    for (const x of g) {
      sum += x
      min = Math.min(min, x)
      max = Math.max(max, x)
    }
    const vNormMean = norms.reduce((a, b) => a + b, 0) / norms.length
    return { layer: layer.name, gMean: sum / g.length, gMin: min, gMax: max, vNormMean }
  })
}

function isBetter(metric: EarlyStoppingSpec['metric'] | 'train_loss', a: EpochMetrics, b: EpochMetrics): boolean {
  if (metric === 'val_accuracy') return (a.valAccuracy ?? -Infinity) > (b.valAccuracy ?? -Infinity)
  if (metric === 'val_loss') return (a.valLoss ?? Infinity) < (b.valLoss ?? Infinity)
  return a.trainLoss < b.trainLoss
}

/** The best epoch of a history by a metric (earliest on ties), or null for an empty history. */
export function bestEpochOf(history: readonly EpochMetrics[], metric: EarlyStoppingSpec['metric'] | 'train_loss'): EpochMetrics | null {
  let best: EpochMetrics | null = null
  for (const m of history) if (best === null || isBetter(metric, m, best)) best = m
  return best
}

function selectionMetric(spec: TrainerSpec, hasValidation: boolean): EarlyStoppingSpec['metric'] | 'train_loss' {
  return spec.earlyStopping?.metric ?? (hasValidation ? 'val_loss' : 'train_loss')
}

// ---------------------------------------------------------------- the run

function snapshotTensors(model: tf.LayersModel, optimizer: LayerwiseOptimizer): CheckpointTensor[] {
  const fromModel = modelVariables(model).map((v) => ({ name: `model/${v.key}`, shape: [...(v.variable.shape as number[])], data: v.variable.read().dataSync() as Float32Array }))
  const fromOptimizer = optimizer.stateVariables().map((s) => ({ name: `optimizer/${s.name}`, shape: [...s.variable.shape], data: s.variable.dataSync() as Float32Array }))
  return [...fromModel, ...fromOptimizer]
}

/**
 * A step runs synchronously, so without this a pause or cancel arriving over IPC (an event-loop
 * task) would wait until the run ends: awaiting a resolved promise only drains microtasks.
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

const noHooks: TrainerHooks = { onProgress: () => {}, shouldStop: () => false, waitWhilePaused: async () => {} }

/**
 * Trains as the spec says, reporting through `hooks.onProgress`. Resolves when the run ends
 * (completed, stopped early or cancelled); rejects on an error, after sending `failed`.
 */
export async function train(input: TrainerSpecInput | TrainerSpec, hooks: Partial<TrainerHooks> = {}): Promise<TrainResult> {
  const h: TrainerHooks = { ...noHooks, ...hooks }
  try {
    return await run(parseTrainerSpec(input), h)
  } catch (error) {
    const failure = explainFailure(error, tf.getBackend())
    h.onProgress({ type: 'failed', message: failure.message })
    throw failure
  }
}

/** What the wasm build says when its heap (4 GiB at most) has no room left, in any replica. */
const WASM_OUT_OF_MEMORY = /memory access out of bounds|Aborted\(|out of memory|Cannot enlarge memory/i

/**
 * The error a run reports: as it is, except that running out of the wasm heap, which the wasm
 * build reports as a bare "memory access out of bounds" or "Aborted()", says so and what to do.
 */
export function explainFailure(error: unknown, backend: string): Error {
  const original = error instanceof Error ? error : new Error(String(error))
  if (backend !== 'wasm' || !WASM_OUT_OF_MEMORY.test(original.message)) return original
  return new Error(
    `the wasm backend ran out of memory (its heap holds at most 4 GiB) (${original.message}). ` +
      'Train fewer layers (a preset that keeps the early blocks frozen), use a smaller batch size or a new, narrower classifier, ' +
      'or install @tensorflow/tfjs-node (or -gpu with CUDA), which has no such limit'
  )
}

/**
 * The model a run starts from (weights loaded, or seeded, or to be restored from `resume`) and
 * the preprocessing it trains with. The weights' arrays are not kept once the model holds them.
 */
async function startingModel(
  spec: TrainerSpec,
  resume: LoadedCheckpoint | null,
  emit: TrainerHooks['onProgress'],
  warnings: string[]
): Promise<{ model: tf.LayersModel; preprocessing: Preprocessing }> {
  let loaded: LoadedVggWeights | null = null
  if (spec.weights !== null && resume === null) {
    emit({ type: 'preparing', stage: 'loading-weights', done: 0, total: 1 })
    loaded = await loadVggWeights(spec.weights.path, { depth: spec.model.depth })
    warnings.push(...loaded.warnings)
    emit({ type: 'preparing', stage: 'loading-weights', done: 1, total: 1 })
  }
  const preprocessing: Preprocessing = spec.preprocessing ?? resume?.state.preprocessing ?? loaded?.preprocessing ?? TORCHVISION_PREPROCESSING
  if (spec.preprocessing !== undefined && loaded !== null && spec.preprocessing.kind !== loaded.preprocessing.kind) {
    warnings.push(`preprocessing ${spec.preprocessing.kind} differs from the weights' own (${loaded.preprocessing.kind})`)
  }
  const built = buildTrainingModel(spec, loaded, resume !== null)
  warnings.push(...built.warnings)
  return { model: built.model, preprocessing }
}

async function run(spec: TrainerSpec, hooks: TrainerHooks): Promise<TrainResult> {
  const emit = hooks.onProgress
  const selection = await selectBackend({ forced: spec.backend })
  await removeUnfinishedCheckpoints(spec.checkpointDir)
  const warnings: string[] = []

  const resume = spec.resumeFrom === undefined ? null : await loadCheckpoint(spec.resumeFrom)
  const { model, preprocessing } = await startingModel(spec, resume, emit, warnings)
  let replica: Replica | null = null
  let workers: ReplicaWorkers | null = null
  try {
    const trainItems = spec.data.items.filter((i) => i.split === 'train')
    const valItems = spec.data.items.filter((i) => i.split === 'validation')
    const total = spec.data.items.length
    const progress = (offset: number) => (done: number) => emit({ type: 'preparing', stage: 'decoding', done: offset + done, total })
    const replicas = replicaCount(spec, selection.backend)
    const decodedTrain = await decodeImageSet(trainItems, spec.model.inputSize, preprocessing.channelOrder, progress(0))
    const trainSet = replicas > 1 ? shareImageSet(decodedTrain) : decodedTrain
    const valSet = await decodeImageSet(valItems, spec.model.inputSize, preprocessing.channelOrder, progress(trainItems.length))

    const weightsPerClass = spec.classWeights === 'none' ? null : classWeights(spec.classWeights, Array.from(trainSet.labels), spec.model.numClasses)
    replica = new Replica(spec, model, weightsPerClass, 0)
    const { split } = replica
    const featureShape = prefixOutputShape(model, split)
    const cachePlan = planFeatureCache({
      mode: spec.featureCache,
      boundary: split.boundary,
      featureShape,
      images: trainSet.count + valSet.count,
      augmentation: spec.augmentation
    })
    const cache = async (set: ImageSet, offset: number, shared: boolean): Promise<InputSource> => {
      if (!cachePlan.cached) return { set, store: null }
      let done = offset
      const total = (trainSet.count + valSet.count) * cachePlan.variants
      const store = await buildFeatureStore(set, split.prefix, featureShape, cachePlan.variants, preprocessing, {
        chunk: spec.batchSize,
        shared,
        yieldToEventLoop,
        shouldStop: hooks.shouldStop,
        onChunk: (n) => {
          done += n
          emit({ type: 'preparing', stage: 'caching-features', done, total })
        }
      })
      return { set, store }
    }
    const trainSource = await cache(trainSet, 0, replicas > 1)
    const valSource = await cache(valSet, trainSet.count * cachePlan.variants, false)
    replica.feed(new NetworkInputs(split, preprocessing, spec.augmentation), trainSource, valSource)

    const history: EpochMetrics[] = []
    let startEpoch = 0
    if (resume !== null) {
      replica.restore(resume)
      history.push(...resume.state.history)
      startEpoch = resume.state.epoch
    }

    const stepsPerEpoch = Math.ceil(trainSet.count / spec.batchSize)
    if (resume !== null && resume.state.stepsPerEpoch !== stepsPerEpoch) {
      throw new Error(`checkpoint ${resume.path} was written with ${resume.state.stepsPerEpoch} steps per epoch, this spec gives ${stepsPerEpoch} (other data or batch size)`)
    }
    if (replicas > 1) {
      const shapes = replica.optimizer.variables.map((v) => [...v.variable.shape])
      const features = trainSource.store?.sharedBuffers() ?? null
      const exchange = GradientExchange.create(shapes, replicas)
      workers = await ReplicaWorkers.start(
        replicas,
        {
          spec,
          backend: selection.backend,
          preprocessing,
          weightsPerClass,
          resumeFrom: resume?.path ?? null,
          train: trainSet,
          trainFeatures: features === null ? null : { shape: featureShape, buffers: features },
          exchange: { buffer: exchange.buffer, shapes, replicas }
        },
        exchange
      )
    }
    const trainableParams = model.trainableWeights.reduce((n, w) => n + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0)
    emit({
      type: 'started',
      backend: selection.backend,
      skippedBackends: selection.skipped,
      params: model.countParams(),
      trainableParams,
      stepsPerEpoch,
      trainImages: trainSet.count,
      validationImages: valSet.count,
      startEpoch,
      warnings,
      featureCache: describeCache(cachePlan),
      replicas
    })

    const loop = new EpochLoop(spec, replica, workers, { train: trainSet.count, validation: valSet.count }, preprocessing, stepsPerEpoch, hooks)
    const outcome = await loop.run(startEpoch, history, selection.backend)
    return { ...outcome, model }
  } catch (error) {
    // After a wasm abort the heap may be unusable; the original error is what the run reports.
    bestEffort(() => model.dispose())
    throw error
  } finally {
    // Worker threads first: if they stayed, the process would never exit.
    await workers?.close()
    bestEffort(() => replica?.dispose())
  }
}

function bestEffort(release: () => void): void {
  try {
    release()
  } catch {
    // the error that ended the run is reported instead
  }
}

function describeCache(plan: FeatureCachePlan): { cached: boolean; boundary: string | null; reason: string } {
  return { cached: plan.cached, boundary: plan.boundary, reason: plan.reason }
}

class EpochLoop {
  private readonly checkpoints: string[] = []
  private readonly model: tf.LayersModel
  private readonly optimizer: LayerwiseOptimizer
  /** Steps exchanged so far: their parity picks the exchange's region. */
  private exchanged = 0

  constructor(
    private readonly spec: TrainerSpec,
    private readonly replica: Replica,
    private readonly workers: ReplicaWorkers | null,
    /** Images in the training and validation sets. */
    private readonly counts: { train: number; validation: number },
    private readonly preprocessing: Preprocessing,
    private readonly stepsPerEpoch: number,
    private readonly hooks: TrainerHooks
  ) {
    this.model = replica.model
    this.optimizer = replica.optimizer
  }

  private learningRate(globalStep: number): number {
    return learningRateAt(this.spec.schedule, { baseLearningRate: this.spec.optimizer.learningRate, stepsPerEpoch: this.stepsPerEpoch, epochs: this.spec.epochs }, globalStep)
  }

  /** One optimizer step on a batch (shared among the replicas); returns the loss and the number of correct predictions. */
  private async trainStep(indices: Int32Array, epoch: number, step: number, learningRate: number): Promise<{ loss: number; correct: number }> {
    const { workers, replica } = this
    if (workers === null) return replica.trainStep(indices, epoch, step, learningRate)
    const parity = this.exchanged++ % 2
    const shares = Array.from({ length: workers.replicas }, (_, r) => shareOf(indices, workers.replicas, r))
    workers.step(shares, epoch, step, parity)
    const own = replica.gradients(shares[0], epoch, step)
    try {
      const variables = replica.optimizer.variables
      workers.exchange.write(0, parity, variables.map((v) => own.grads[v.variable.name]))
      tf.dispose(Object.values(own.grads))
      const others = await workers.gradients()
      const weights = [own.weight, ...others.map((o) => o.weight)]
      workers.apply(weights, learningRate, parity)
      replica.optimizer.applyEach((_v, i) => workers.exchange.average(weights, parity, i), learningRate)
      const losses = [own.loss.dataSync()[0], ...others.map((o) => o.loss)]
      const total = weights.reduce((a, b) => a + b, 0)
      return {
        loss: losses.reduce((sum, l, r) => sum + l * weights[r], 0) / total,
        correct: own.correct.dataSync()[0] + others.reduce((sum, o) => sum + o.correct, 0)
      }
    } finally {
      disposeGradients(own)
    }
  }

  /** Unweighted loss and accuracy over the validation set, or null when it is empty or the run was cancelled meanwhile. */
  private async validate(): Promise<{ loss: number; accuracy: number } | 'cancelled' | null> {
    const count = this.counts.validation
    if (count === 0) return null
    let lossSum = 0
    let correct = 0
    const order = Int32Array.from({ length: count }, (_, i) => i)
    for (const indices of batchSlices(order, this.spec.batchSize)) {
      await yieldToEventLoop()
      await this.hooks.waitWhilePaused()
      if (this.hooks.shouldStop()) return 'cancelled'
      const result = this.replica.evaluate(indices)
      lossSum += result.lossSum
      correct += result.correct
    }
    return { loss: lossSum / count, accuracy: correct / count }
  }

  private checkpointState(epoch: number, history: EpochMetrics[]): CheckpointState {
    return {
      runId: this.spec.runId,
      epoch,
      globalStep: epoch * this.stepsPerEpoch,
      seed: this.spec.seed,
      stepsPerEpoch: this.stepsPerEpoch,
      model: this.spec.model,
      preprocessing: this.preprocessing,
      classNames: this.spec.data.classNames,
      optimizer: { kind: this.optimizer.kind, step: this.optimizer.step },
      history: [...history]
    }
  }

  async run(startEpoch: number, history: EpochMetrics[], backend: BackendName): Promise<Omit<TrainResult, 'model'>> {
    const { spec, hooks } = this
    const emit = hooks.onProgress
    const metric = selectionMetric(spec, this.counts.validation > 0)
    let status: TrainerStatus = 'completed'
    for (let epoch = startEpoch + 1; epoch <= spec.epochs && status === 'completed'; epoch++) {
      const started = performance.now()
      const batches = batchSlices(epochOrder(this.counts.train, spec.seed, epoch), spec.batchSize)
      let lossSum = 0
      let correct = 0
      let seen = 0
      // Throughput counts the steps' own time, not validation or checkpoint writing between them.
      let stepSecondsSinceReport = 0
      let imagesSinceReport = 0
      let learningRate = 0
      for (let i = 0; i < batches.length; i++) {
        await yieldToEventLoop()
        await hooks.waitWhilePaused()
        if (hooks.shouldStop()) {
          status = 'cancelled'
          break
        }
        const step = i + 1
        const globalStep = (epoch - 1) * this.stepsPerEpoch + step
        learningRate = this.learningRate(globalStep - 1)
        const stepStart = performance.now()
        const result = await this.trainStep(batches[i], epoch, step, learningRate)
        stepSecondsSinceReport += (performance.now() - stepStart) / 1000
        if (!Number.isFinite(result.loss)) throw new Error(`the loss became ${result.loss} at epoch ${epoch}, step ${step}: lower the learning rate`)
        const n = batches[i].length
        lossSum += result.loss * n
        correct += result.correct
        seen += n
        imagesSinceReport += n
        if (step % spec.stepMetricsEvery === 0) {
          const imagesPerSec = imagesSinceReport / Math.max(1e-6, stepSecondsSinceReport)
          emit({ type: 'step', epoch, step, globalStep, loss: result.loss, accuracy: result.correct / n, learningRate, imagesPerSec })
          stepSecondsSinceReport = 0
          imagesSinceReport = 0
        }
      }
      if (status === 'cancelled') break
      const val = await this.validate()
      if (val === 'cancelled') {
        status = 'cancelled'
        break
      }
      const metrics: EpochMetrics = { epoch, trainLoss: lossSum / seen, trainAccuracy: correct / seen, valLoss: val?.loss ?? null, valAccuracy: val?.accuracy ?? null }
      history.push(metrics)
      emit({ type: 'epoch', ...metrics, seconds: (performance.now() - started) / 1000, learningRate, wn: weightNormStats(this.model) })

      const written = await writeCheckpoint(spec.checkpointDir, checkpointName(epoch), this.checkpointState(epoch, history), snapshotTensors(this.model, this.optimizer))
      this.checkpoints.push(written.path)
      emit({ type: 'checkpoint', epoch, step: epoch * this.stepsPerEpoch, path: written.path, bytes: written.bytes })
      const best = bestEpochOf(history, metric)
      if (spec.checkpointRetention === 'last-and-best') await this.prune(written.path, best?.epoch ?? epoch)
      if (spec.earlyStopping !== null && best !== null && epoch - best.epoch >= spec.earlyStopping.patience && epoch < spec.epochs) status = 'stopped-early'
    }

    const best = bestEpochOf(history, metric)
    const last = history.length > 0 ? history[history.length - 1] : null
    let restoredBest = false
    let finalCheckpoint: string | null = null
    if (status !== 'cancelled' && last !== null) {
      finalCheckpoint = join(spec.checkpointDir, checkpointName(last.epoch))
      if (spec.earlyStopping !== null && best !== null && best.epoch !== last.epoch) {
        finalCheckpoint = join(spec.checkpointDir, checkpointName(best.epoch))
        restoreModelVariables(this.model, await loadCheckpoint(finalCheckpoint, (name) => name.startsWith('model/')))
        restoredBest = true
      }
    }
    const outcome = {
      status,
      bestEpoch: best?.epoch ?? 0,
      history,
      restoredBest,
      finalCheckpoint,
      backend
    }
    emit({
      type: 'finished',
      status,
      bestEpoch: outcome.bestEpoch,
      metrics: best,
      lastEpoch: last,
      restoredBest,
      finalCheckpoint,
      epochsCompleted: history.length
    })
    return outcome
  }

  /** Keeps the newest and the best checkpoint of this run; deletes the others it wrote. */
  private async prune(newest: string, bestEpoch: number): Promise<void> {
    const keep = new Set([newest, join(this.spec.checkpointDir, checkpointName(bestEpoch))])
    for (const path of this.checkpoints.filter((p) => !keep.has(p))) {
      await removeCheckpoint(path)
      this.checkpoints.splice(this.checkpoints.indexOf(path), 1)
    }
  }
}
