/** Runs as the UI sees them: how to start one, what it reports while training, what it left. */
import { z } from 'zod'
import type { LayerPlan } from './layer-plan-schema'

export const hyperparametersSchema = z
  .object({
    optimizer: z.enum(['sgd', 'adam', 'adamw']).default('adam'),
    learningRate: z.number().positive().max(10).default(0.001),
    /** SGD only. */
    momentum: z.number().min(0).lt(1).default(0.9),
    weightDecay: z.number().min(0).max(1).default(0),
    schedule: z.enum(['constant', 'step', 'cosine']).default('cosine'),
    warmupEpochs: z.number().min(0).max(100).default(0),
    stepEpochs: z.number().int().min(1).default(10),
    gamma: z.number().positive().max(1).default(0.1),
    batchSize: z.number().int().min(1).max(512).default(32),
    epochs: z.number().int().min(1).max(1000).default(10),
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(1),
    /** Stop after this many epochs without improvement; null: never. */
    earlyStoppingPatience: z.number().int().min(1).nullable().default(null),
    earlyStoppingMetric: z.enum(['val_loss', 'val_accuracy']).default('val_loss'),
    classWeights: z.enum(['none', 'balanced']).default('none'),
    augmentation: z
      .object({
        flip: z.boolean().default(true),
        crop: z.number().int().min(0).max(64).default(0),
        rotationDegrees: z.number().min(0).max(45).default(0),
        brightness: z.number().min(0).max(1).default(0),
        contrast: z.number().min(0).max(1).default(0)
      })
      .strict()
      .default({ flip: true, crop: 0, rotationDegrees: 0, brightness: 0, contrast: 0 })
  })
  .strict()

export type Hyperparameters = z.output<typeof hyperparametersSchema>
export type HyperparametersInput = z.input<typeof hyperparametersSchema>

export type RunStatus = 'queued' | 'running' | 'paused' | 'completed' | 'failed' | 'cancelled'

export interface EpochSummary {
  epoch: number
  trainLoss: number
  trainAccuracy: number
  valLoss: number | null
  valAccuracy: number | null
}

export interface RunSummary {
  id: number
  name: string
  datasetId: number | null
  snapshotId: number | null
  parentRunId: number | null
  status: RunStatus
  failureReason: string | null
  backend: string | null
  createdAt: string
  startedAt: string | null
  finishedAt: string | null
  epochs: number
  epochsCompleted: number
  /** The last finished epoch's metrics. */
  latest: EpochSummary | null
}

/** What the user chose for a run: enough to compare two runs or start one like it. */
export interface RunSpecView {
  plan: LayerPlan
  weightsPath: string | null
  hyperparameters: Hyperparameters
}

export type RunDetail = RunSummary & { spec: RunSpecView | null }

/** Live progress of a run, pushed as `run.progress` events. */
export type RunProgress =
  | { runId: number; type: 'preparing'; stage: string; done: number; total: number }
  | {
      runId: number
      type: 'started'
      backend: string
      stepsPerEpoch: number
      epochs: number
      trainImages: number
      validationImages: number
      warnings: string[]
      /** Whether the frozen layers' outputs are cached, and why (or why not), in words. */
      featureCache: string
      /** Model replicas sharing each batch (one per CPU core on the wasm backend). */
      replicas: number
    }
  | { runId: number; type: 'step'; epoch: number; step: number; globalStep: number; stepsPerEpoch: number; loss: number; accuracy: number; learningRate: number; imagesPerSec: number; etaSeconds: number | null }
  | ({ runId: number; type: 'epoch'; seconds: number } & EpochSummary)
  | { runId: number; type: 'status'; status: RunStatus; failureReason: string | null }

export interface MetricSeries {
  name: string
  points: { step: number; epoch: number; value: number; time: number }[]
}
