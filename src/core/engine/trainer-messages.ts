/**
 * The messages between a trainer and whoever runs it: progress from `train` (in-process through
 * `hooks.onProgress`, or from the child process over IPC) and commands to the child.
 * Plain JSON, so they cross `process.send`, Electron's `parentPort` and WebSockets unchanged.
 */
import type { BackendName } from '../../shared/dto'
import type { TrainerSpecInput } from './trainer-spec'

export interface EpochMetrics {
  /** 1-based. */
  epoch: number
  /** Mean over the epoch's steps of the loss that was minimized (class-weighted when class weights are on). */
  trainLoss: number
  trainAccuracy: number
  /** Unweighted mean cross-entropy over the validation items; null when there are none. */
  valLoss: number | null
  valAccuracy: number | null
}

/** Statistics of one weight-normalized layer, to watch g and ||v|| drift. */
export interface WeightNormStats {
  layer: string
  gMean: number
  gMin: number
  gMax: number
  /** Mean over output channels of ||v||. */
  vNormMean: number
}

export type TrainerStatus = 'completed' | 'stopped-early' | 'cancelled'

export type TrainerMessage =
  | { type: 'preparing'; stage: 'loading-weights' | 'decoding' | 'caching-features'; done: number; total: number }
  | {
      type: 'started'
      backend: BackendName
      /** Backends passed over, with why (e.g. "not installed"). */
      skippedBackends: { name: BackendName; reason: string }[]
      params: number
      trainableParams: number
      stepsPerEpoch: number
      trainImages: number
      validationImages: number
      /** 0 for a fresh run; the checkpoint's epoch when resuming. */
      startEpoch: number
      /** Layers not taken from the weights file, and why; notes on preprocessing etc. */
      warnings: string[]
      /** Whether the frozen prefix (up to `boundary`) is cached, and why (or why not), for the user. */
      featureCache: { cached: boolean; boundary: string | null; reason: string }
      /** Model replicas sharing each batch (data-parallel over CPU cores). */
      replicas: number
    }
  | {
      type: 'step'
      epoch: number
      /** 1-based within the epoch. */
      step: number
      /** Counted from the start of the run over all epochs, 1-based. */
      globalStep: number
      loss: number
      accuracy: number
      learningRate: number
      /** Images per second of the steps since the last step message (their own time: validation and checkpoints excluded). */
      imagesPerSec: number
    }
  | ({ type: 'epoch'; seconds: number; learningRate: number; wn: WeightNormStats[] } & EpochMetrics)
  | { type: 'checkpoint'; epoch: number; step: number; path: string; bytes: number }
  | { type: 'paused' }
  | { type: 'resumed' }
  | {
      type: 'finished'
      status: TrainerStatus
      /** The epoch whose weights the model ends with when early stopping restored them; else the best by the metric. 0 if none finished. */
      bestEpoch: number
      /** Metrics of `bestEpoch` (null when no epoch finished). */
      metrics: EpochMetrics | null
      /** Metrics of the last finished epoch. */
      lastEpoch: EpochMetrics | null
      /** Whether the final weights are the best epoch's (restored) rather than the last epoch's. */
      restoredBest: boolean
      /** A checkpoint holding the final weights (absent when cancelled: nothing half-done is written). */
      finalCheckpoint: string | null
      epochsCompleted: number
    }
  | { type: 'failed'; message: string }

export type TrainerMessageType = TrainerMessage['type']

/** Commands from the parent to the trainer child process. */
export type TrainerCommand = { type: 'start'; spec: TrainerSpecInput } | { type: 'pause' } | { type: 'resume' } | { type: 'cancel' }

const MESSAGE_TYPES: ReadonlySet<string> = new Set<TrainerMessageType>([
  'preparing',
  'started',
  'step',
  'epoch',
  'checkpoint',
  'paused',
  'resumed',
  'finished',
  'failed'
])

export function isTrainerMessage(value: unknown): value is TrainerMessage {
  return typeof value === 'object' && value !== null && MESSAGE_TYPES.has(String((value as { type?: unknown }).type))
}

export function isTrainerCommand(value: unknown): value is TrainerCommand {
  if (typeof value !== 'object' || value === null) return false
  const type = (value as { type?: unknown }).type
  return type === 'start' || type === 'pause' || type === 'resume' || type === 'cancel'
}
