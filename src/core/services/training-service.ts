import fs from 'node:fs'
import path from 'node:path'
import type { LayerPlan } from '../../shared/layer-plan-schema'
import type { Hyperparameters, RunDetail, RunProgress, RunStatus, RunSummary } from '../../shared/training'
import { ApiError } from '../../shared/errors'
import { validatePlan } from '../model/layer-plan'
import type { TrainerMessage } from '../engine/trainer-messages'
import type { TrainerHandle } from '../engine/trainer-process'
import { trainerModelSpec, type TrainerSpecInput } from '../engine/trainer-spec'
import type { Database } from '../store/db'
import { MetricWriter } from '../store/metric-writer'
import { createRun, getRun, listRuns, setRunStatus, type RunRecord } from '../store/runs-repo'
import { createSnapshot } from '../store/snapshots-repo'

/** Starts a trainer child process: `child_process.fork` in web mode and the CLI, `utilityProcess` in Electron. */
export type TrainerLauncher = () => TrainerHandle

export interface RunRequest {
  datasetId: number
  name?: string
  plan: LayerPlan
  weightsPath: string | null
  hyperparameters: Hyperparameters
  backend?: 'wasm' | 'cpu' | 'tensorflow' | 'tensorflow-gpu'
}

/** What a run stores as its spec: the user's choices, and exactly what the trainer was given. */
interface StoredSpec {
  plan: LayerPlan
  weightsPath: string | null
  hyperparameters: Hyperparameters
  trainer: TrainerSpecInput
}

interface ActiveRun {
  handle: TrainerHandle
  metrics: MetricWriter
  settled: Promise<RunStatus>
  stepsPerEpoch: number
  epochs: number
  batchSize: number
  lastGlobalStep: number
}

export interface TrainingContext {
  db: Database
  dataDir: string
  launch: TrainerLauncher
  emit(progress: RunProgress): void
}

/**
 * Runs training jobs in child processes and keeps their record: the run row, its dataset
 * snapshot, metrics in batches, checkpoints. Whatever happens to the child (it finishes, fails,
 * is cancelled or dies), the run ends with a status and, if it failed, the reason.
 */
export class TrainingService {
  private readonly active = new Map<number, ActiveRun>()

  constructor(private readonly ctx: TrainingContext) {}

  async start(request: RunRequest): Promise<RunSummary> {
    const check = validatePlan(request.plan)
    if (check.problems.length) {
      throw new ApiError({
        code: 'invalid_input',
        message: `The layer plan cannot train: ${check.problems.map((p) => p.message).join('; ')}`,
        fields: check.problems.map((p) => ({ path: `plan.${p.field}`, message: p.message }))
      })
    }
    if (request.weightsPath !== null && !fs.existsSync(request.weightsPath)) {
      throw new ApiError({ code: 'invalid_input', message: `Weights file not found: ${request.weightsPath}`, fields: [{ path: 'weightsPath', message: 'not found' }] })
    }
    const snapshot = await createSnapshot(this.ctx.db, request.datasetId)
    if (snapshot.classNames.length !== request.plan.numClasses) {
      throw new ApiError({
        code: 'invalid_input',
        message: `The plan's head has ${request.plan.numClasses} classes but the dataset has ${snapshot.classNames.length} labelled classes (${snapshot.classNames.join(', ')})`,
        fields: [{ path: 'plan.numClasses', message: `must be ${snapshot.classNames.length}` }]
      })
    }
    const h = request.hyperparameters
    const trainer: Omit<TrainerSpecInput, 'runId' | 'checkpointDir'> = {
      model: trainerModelSpec(request.plan),
      weights: request.weightsPath ? { path: path.resolve(request.weightsPath) } : null,
      data: {
        classNames: snapshot.classNames,
        items: snapshot.items.filter((i) => i.split !== 'test').map((i) => ({ path: i.path, label: i.label, split: i.split as 'train' | 'validation' }))
      },
      optimizer: { kind: h.optimizer, learningRate: h.learningRate, momentum: h.optimizer === 'sgd' ? h.momentum : undefined, weightDecay: h.weightDecay },
      schedule: { kind: h.schedule, warmupEpochs: h.warmupEpochs, stepEpochs: h.stepEpochs, gamma: h.gamma },
      batchSize: h.batchSize,
      epochs: h.epochs,
      seed: h.seed,
      earlyStopping: h.earlyStoppingPatience === null ? null : { patience: h.earlyStoppingPatience, metric: h.earlyStoppingMetric },
      classWeights: h.classWeights,
      augmentation: h.augmentation,
      checkpointRetention: 'last-and-best',
      backend: request.backend
    }
    const placeholder: StoredSpec = { plan: request.plan, weightsPath: request.weightsPath, hyperparameters: h, trainer: { ...trainer, runId: 'pending', checkpointDir: 'pending' } }
    const run = await createRun(this.ctx.db, {
      name: request.name ?? `${request.plan.depth === 16 ? 'VGG16' : `VGG${request.plan.depth}`} @${request.plan.inputSize}`,
      spec: placeholder,
      datasetId: request.datasetId,
      snapshotId: snapshot.id
    })
    const spec: TrainerSpecInput = { ...trainer, runId: String(run.id), checkpointDir: path.join(this.ctx.dataDir, 'runs', String(run.id), 'checkpoints') }
    await this.ctx.db.run('UPDATE runs SET spec = ? WHERE id = ?', [JSON.stringify({ ...placeholder, trainer: spec }), run.id])
    this.launch(run.id, spec)
    return this.summary(await getRun(this.ctx.db, run.id))
  }

  private launch(runId: number, spec: TrainerSpecInput): void {
    const handle = this.ctx.launch()
    const metrics = new MetricWriter(this.ctx.db, runId)
    let ended: { status: RunStatus; reason: string | null } | null = null
    const active: ActiveRun = { handle, metrics, settled: Promise.resolve('queued'), stepsPerEpoch: 0, epochs: spec.epochs, batchSize: spec.batchSize, lastGlobalStep: 0 }
    let chain = Promise.resolve()
    const handleMessage = (message: TrainerMessage) => {
      chain = chain.then(() => this.onMessage(runId, active, message)).catch(() => undefined)
      if (message.type === 'finished') ended = { status: message.status === 'cancelled' ? 'cancelled' : 'completed', reason: null }
      if (message.type === 'failed') ended = { status: 'failed', reason: message.message }
    }
    handle.onMessage(handleMessage)
    active.settled = handle.exited.then(async ({ code, signal }) => {
      await chain
      await metrics.close()
      const outcome = ended ?? { status: 'failed' as const, reason: `the trainer process stopped unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`})` }
      await setRunStatus(this.ctx.db, runId, outcome.status, { failureReason: outcome.reason ?? undefined })
      this.ctx.emit({ runId, type: 'status', status: outcome.status, failureReason: outcome.reason })
      this.active.delete(runId)
      return outcome.status
    })
    this.active.set(runId, active)
    handle.send({ type: 'start', spec })
  }

  private async onMessage(runId: number, active: ActiveRun, message: TrainerMessage): Promise<void> {
    const now = Date.now() / 1000
    switch (message.type) {
      case 'preparing':
        this.ctx.emit({ runId, type: 'preparing', stage: message.stage, done: message.done, total: message.total })
        return
      case 'started':
        active.stepsPerEpoch = message.stepsPerEpoch
        active.lastGlobalStep = message.startEpoch * message.stepsPerEpoch
        await setRunStatus(this.ctx.db, runId, 'running', { backend: message.backend })
        this.ctx.emit({ runId, type: 'status', status: 'running', failureReason: null })
        this.ctx.emit({
          runId,
          type: 'started',
          backend: message.backend,
          stepsPerEpoch: message.stepsPerEpoch,
          epochs: active.epochs,
          trainImages: message.trainImages,
          validationImages: message.validationImages,
          warnings: message.warnings,
          featureCache: message.featureCache.reason,
          replicas: message.replicas
        })
        return
      case 'step': {
        active.lastGlobalStep = message.globalStep
        const remainingSteps = active.epochs * active.stepsPerEpoch - message.globalStep
        const stepsPerSec = message.imagesPerSec / active.batchSize
        active.metrics.add(
          (['loss', 'accuracy', 'learningRate', 'imagesPerSec'] as const).map((key) => ({ name: `step/${key}`, step: message.globalStep, epoch: message.epoch, value: message[key], time: now }))
        )
        this.ctx.emit({
          runId,
          type: 'step',
          epoch: message.epoch,
          step: message.step,
          globalStep: message.globalStep,
          stepsPerEpoch: active.stepsPerEpoch,
          loss: message.loss,
          accuracy: message.accuracy,
          learningRate: message.learningRate,
          imagesPerSec: message.imagesPerSec,
          etaSeconds: stepsPerSec > 0 ? Math.round(remainingSteps / stepsPerSec) : null
        })
        return
      }
      case 'epoch': {
        const values: Record<string, number | null> = {
          'epoch/trainLoss': message.trainLoss,
          'epoch/trainAccuracy': message.trainAccuracy,
          'epoch/valLoss': message.valLoss,
          'epoch/valAccuracy': message.valAccuracy,
          'epoch/seconds': message.seconds
        }
        for (const wn of message.wn) {
          values[`wn/${wn.layer}/gMean`] = wn.gMean
          values[`wn/${wn.layer}/vNormMean`] = wn.vNormMean
        }
        active.metrics.add(
          Object.entries(values)
            .filter((entry): entry is [string, number] => entry[1] !== null)
            .map(([name, value]) => ({ name, step: active.lastGlobalStep, epoch: message.epoch, value, time: now }))
        )
        await active.metrics.flush()
        this.ctx.emit({ runId, type: 'epoch', epoch: message.epoch, trainLoss: message.trainLoss, trainAccuracy: message.trainAccuracy, valLoss: message.valLoss, valAccuracy: message.valAccuracy, seconds: message.seconds })
        return
      }
      case 'checkpoint':
        await this.ctx.db.run('INSERT OR REPLACE INTO checkpoints (run_id, epoch, step, path, bytes) VALUES (?, ?, ?, ?, ?)', [runId, message.epoch, message.step, message.path, message.bytes])
        return
      case 'paused':
      case 'resumed': {
        const status = message.type === 'paused' ? 'paused' : 'running'
        await setRunStatus(this.ctx.db, runId, status)
        this.ctx.emit({ runId, type: 'status', status, failureReason: null })
        return
      }
      case 'finished':
        if (message.finalCheckpoint) {
          await this.ctx.db.run("INSERT INTO artifacts (run_id, kind, path, meta) VALUES (?, 'final-weights', ?, ?)", [
            runId,
            message.finalCheckpoint,
            JSON.stringify({ bestEpoch: message.bestEpoch, restoredBest: message.restoredBest, metrics: message.metrics, status: message.status })
          ])
        }
        return
      case 'failed':
        return
    }
  }

  control(runId: number, command: 'pause' | 'resume' | 'cancel'): boolean {
    const active = this.active.get(runId)
    if (!active) return false
    active.handle.send({ type: command })
    return true
  }

  /** Resolves with the run's final status once its trainer has exited (immediately if not running). */
  async settled(runId: number): Promise<RunStatus> {
    const active = this.active.get(runId)
    return active ? active.settled : (await getRun(this.ctx.db, runId)).status
  }

  async list(): Promise<RunSummary[]> {
    return Promise.all((await listRuns(this.ctx.db)).map((r) => this.summary(r)))
  }

  async get(runId: number): Promise<RunDetail> {
    const run = await getRun(this.ctx.db, runId)
    const stored = run.spec as Partial<StoredSpec>
    const spec = stored.plan && stored.hyperparameters ? { plan: stored.plan, weightsPath: stored.weightsPath ?? null, hyperparameters: stored.hyperparameters } : null
    return { ...(await this.summary(run)), spec }
  }

  private async summary(run: RunRecord): Promise<RunSummary> {
    const spec = run.spec as Partial<StoredSpec>
    const latest = await this.ctx.db.get<{ epoch: number }>("SELECT max(epoch) AS epoch FROM metrics WHERE run_id = ? AND name = 'epoch/trainLoss'", [run.id])
    let summaryLatest: RunSummary['latest'] = null
    if (latest?.epoch) {
      const rows = await this.ctx.db.all<{ name: string; value: number }>("SELECT name, value FROM metrics WHERE run_id = ? AND epoch = ? AND name LIKE 'epoch/%'", [run.id, latest.epoch])
      const value = (name: string) => rows.find((r) => r.name === `epoch/${name}`)?.value ?? null
      summaryLatest = { epoch: latest.epoch, trainLoss: value('trainLoss') ?? NaN, trainAccuracy: value('trainAccuracy') ?? NaN, valLoss: value('valLoss'), valAccuracy: value('valAccuracy') }
    }
    return {
      id: run.id,
      name: run.name,
      datasetId: run.datasetId,
      snapshotId: run.snapshotId,
      parentRunId: run.parentRunId,
      status: run.status,
      failureReason: run.failureReason,
      backend: run.backend,
      createdAt: run.createdAt,
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
      epochs: spec.hyperparameters?.epochs ?? 0,
      epochsCompleted: latest?.epoch ?? 0,
      latest: summaryLatest
    }
  }

  /** Cancels every run and waits for the trainers to exit (killing any that do not within 10 s). */
  async stopAll(): Promise<void> {
    const running = [...this.active.values()]
    for (const run of running) run.handle.send({ type: 'cancel' })
    await Promise.all(
      running.map((run) =>
        Promise.race([run.settled, new Promise((resolve) => setTimeout(resolve, 10_000))]).then(() => {
          run.handle.kill('SIGKILL')
          return run.settled
        })
      )
    )
  }
}
