/**
 * Data-parallel training on CPU cores. The wasm backend runs one thread, so a run on a machine
 * with more cores splits every batch between the replica in its own thread (replica 0) and
 * replicas in worker threads, each with its own wasm backend and its own copy of the model.
 * Every replica computes the gradients of its share of the batch and copies them into one
 * SharedArrayBuffer; then every replica averages all of them (weighted by each share's weight
 * in the loss) in the same order with the same ops and applies the result with its own
 * optimizer. So the replicas stay identical without ever exchanging weights, and the average
 * equals the gradient of the whole batch up to float rounding (tested).
 *
 * Per step the main thread posts `step` (each worker's share) to the workers, computes its own
 * share meanwhile, waits for every worker's `grads`, posts `apply` with the weights, and
 * applies. The exchange keeps two regions per replica and alternates between them, so a worker
 * still reading step k's gradients never sees step k+1's being written.
 */
import os from 'node:os'
import { Worker } from 'node:worker_threads'
import * as tf from '@tensorflow/tfjs'
import type { BackendName } from '../../shared/dto'
import type { Preprocessing } from '../weights/vgg-weights'
import type { ImageSet } from './data-loader'
import type { TrainerSpec } from './trainer-spec'

/** Replicas beyond this add more copies of the model than they save time on a desktop CPU. */
const MAX_REPLICAS = 4

/**
 * How many replicas a run uses: the spec's number, or with 'auto' one per core (up to 4) on
 * the wasm backend and 1 elsewhere (TensorFlow's own kernels already use every core; a GPU is
 * one device), and never more than the batch has images.
 */
export function replicaCount(spec: Pick<TrainerSpec, 'replicas' | 'batchSize'>, backend: BackendName): number {
  const wanted = spec.replicas !== 'auto' ? spec.replicas : backend === 'wasm' ? Math.min(os.availableParallelism(), MAX_REPLICAS) : 1
  return Math.max(1, Math.min(wanted, spec.batchSize))
}

/** Replica r's share of a batch: consecutive runs whose sizes differ by at most one, the larger first. */
export function shareOf(indices: Int32Array, replicas: number, r: number): Int32Array {
  const base = Math.floor(indices.length / replicas)
  const extra = indices.length % replicas
  const start = r * base + Math.min(r, extra)
  return indices.subarray(start, start + base + (r < extra ? 1 : 0))
}

/** A view of a tensor's values without a copy where the backend allows it (wasm: its heap; valid until the next allocation). */
function valuesOf(t: tf.Tensor): Float32Array {
  const backend = tf.backend() as unknown as { typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array }
  if (tf.getBackend() === 'wasm' && typeof backend.typedArrayFromHeap === 'function') return backend.typedArrayFromHeap(t)
  return t.dataSync() as Float32Array
}

/** Every replica's gradients, twice over (alternating steps), in one SharedArrayBuffer. */
export class GradientExchange {
  private readonly offsets: number[] = []
  private readonly perCopy: number
  /** Where `average` sums, reused for every variable (as large as the largest one once used). */
  private scratch = new Float32Array(0)

  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly shapes: readonly (readonly number[])[],
    readonly replicas: number
  ) {
    let total = 0
    for (const shape of shapes) {
      this.offsets.push(total)
      total += shape.reduce((a, b) => a * b, 1)
    }
    this.perCopy = total
    if (buffer.byteLength !== GradientExchange.bytes(shapes, replicas)) throw new Error('gradient exchange buffer has the wrong size')
  }

  static bytes(shapes: readonly (readonly number[])[], replicas: number): number {
    return shapes.reduce((n, shape) => n + shape.reduce((a, b) => a * b, 1), 0) * replicas * 2 * 4
  }

  static create(shapes: readonly (readonly number[])[], replicas: number): GradientExchange {
    return new GradientExchange(new SharedArrayBuffer(GradientExchange.bytes(shapes, replicas)), shapes, replicas)
  }

  private region(replica: number, parity: number, variable: number): Float32Array {
    const size = this.shapes[variable].reduce((a, b) => a * b, 1)
    const start = (replica * 2 + parity) * this.perCopy + this.offsets[variable]
    return new Float32Array(this.buffer, start * 4, size)
  }

  /** Copies a replica's gradients (in variable order) into its region for this step's parity. */
  write(replica: number, parity: number, grads: readonly tf.Tensor[]): void {
    grads.forEach((g, i) => this.region(replica, parity, i).set(valuesOf(g)))
  }

  /**
   * The weighted mean of every replica's gradient of `variable`, as a new tensor: Σ w_r g_r / Σ w_r
   * over the replicas with w_r > 0, summed in replica order in JS from the regions (this
   * replica's own included), so every replica gets the same values. No gradient tensor is needed
   * meanwhile, so a replica frees its own as soon as they are written: at 224, with fc1's 411 MB
   * gradient, tensors for every replica's gradient and the weighted terms did not fit the heap.
   */
  average(weights: readonly number[], parity: number, variable: number): tf.Tensor {
    const total = weights.reduce((a, b) => a + b, 0)
    const size = this.shapes[variable].reduce((a, b) => a * b, 1)
    if (this.scratch.length < size) this.scratch = new Float32Array(size)
    const mean = this.scratch.subarray(0, size)
    const terms = weights.flatMap((w, r) => (w > 0 ? [{ k: w / total, g: this.region(r, parity, variable) }] : []))
    if (terms.length === 0) throw new Error('no replica had images in this step')
    const [a, b] = terms
    // One pass for the first two terms (the usual two replicas), one more per further term.
    if (b === undefined) for (let i = 0; i < size; i++) mean[i] = a.k * a.g[i]
    else for (let i = 0; i < size; i++) mean[i] = a.k * a.g[i] + b.k * b.g[i]
    for (const { k, g } of terms.slice(2)) for (let i = 0; i < size; i++) mean[i] += k * g[i]
    // tf.tensor copies the values, so the scratch array is free again for the next variable.
    return tf.tensor(mean, [...this.shapes[variable]], 'float32')
  }
}

/** What a worker replica needs to build itself (all of it survives structured cloning). */
export interface ReplicaInit {
  index: number
  spec: TrainerSpec
  backend: BackendName
  preprocessing: Preprocessing
  weightsPerClass: number[] | null
  resumeFrom: string | null
  /** Training images; `pixels` on a SharedArrayBuffer. */
  train: ImageSet
  /** The training images' feature cache (one SharedArrayBuffer per orientation), when the run caches. */
  trainFeatures: { shape: number[]; buffers: SharedArrayBuffer[] } | null
  exchange: { buffer: SharedArrayBuffer; shapes: number[][]; replicas: number }
}

/** From a worker replica. */
export type ReplicaReply =
  | { type: 'ready' }
  | { type: 'grads'; loss: number; correct: number; weight: number }
  | { type: 'error'; message: string }

/** To a worker replica. */
export type ReplicaCommand =
  | { type: 'step'; indices: Int32Array; epoch: number; step: number; parity: number }
  | { type: 'apply'; weights: number[]; learningRate: number; parity: number }

/** Copies an image set's pixels to shared memory (once), so worker replicas read them in place. */
export function shareImageSet(set: ImageSet): ImageSet {
  if (set.pixels.buffer instanceof SharedArrayBuffer) return set
  const pixels = new Uint8Array(new SharedArrayBuffer(set.pixels.byteLength))
  pixels.set(set.pixels)
  return { ...set, pixels }
}

function workerEntry(): string {
  const here = typeof __filename === 'string' ? __filename : new URL(import.meta.url).pathname
  return here.replace(/data-parallel\.(ts|js)$/, 'replica-worker.$1')
}

/** Starts a worker thread on our sources: through tsx when they are TypeScript. */
function startWorker(init: ReplicaInit): Worker {
  const entry = workerEntry()
  if (!entry.endsWith('.ts')) return new Worker(entry, { workerData: init })
  const tsx = require.resolve('tsx/cjs')
  return new Worker(`require(${JSON.stringify(tsx)}); require(${JSON.stringify(entry)})`, { eval: true, workerData: init })
}

class WorkerReplica {
  private readonly replies: ReplicaReply[] = []
  private waiting: { resolve: (reply: ReplicaReply) => void; reject: (error: Error) => void } | null = null
  private failure: Error | null = null

  constructor(
    readonly index: number,
    private readonly worker: Worker
  ) {
    worker.on('message', (reply: ReplicaReply) => this.deliver(reply))
    worker.on('error', (error) => this.fail(new Error(`replica ${index} (worker thread) failed: ${error.message}`)))
    worker.on('exit', (code) => this.fail(new Error(`replica ${index} (worker thread) exited with code ${code}`)))
  }

  private deliver(reply: ReplicaReply): void {
    if (reply.type === 'error') return this.fail(new Error(`replica ${this.index} (worker thread): ${reply.message}`))
    if (this.waiting !== null) {
      this.waiting.resolve(reply)
      this.waiting = null
    } else this.replies.push(reply)
  }

  private fail(error: Error): void {
    this.failure ??= error
    this.waiting?.reject(this.failure)
    this.waiting = null
  }

  post(command: ReplicaCommand): void {
    if (this.failure !== null) throw this.failure
    this.worker.postMessage(command)
  }

  /** The next reply, which must be of `type`. */
  async next<T extends ReplicaReply['type']>(type: T): Promise<Extract<ReplicaReply, { type: T }>> {
    const reply =
      this.replies.shift() ??
      (await new Promise<ReplicaReply>((resolve, reject) => {
        if (this.failure !== null) return reject(this.failure)
        this.waiting = { resolve, reject }
      }))
    if (reply.type !== type) throw new Error(`replica ${this.index} sent '${reply.type}', expected '${type}'`)
    return reply as Extract<ReplicaReply, { type: T }>
  }

  async terminate(): Promise<void> {
    this.worker.removeAllListeners('exit')
    await this.worker.terminate()
  }
}

/** The worker replicas of a run (replicas 1..n-1), driven step by step from the main thread. */
export class ReplicaWorkers {
  private constructor(
    private readonly workers: WorkerReplica[],
    readonly exchange: GradientExchange
  ) {}

  get replicas(): number {
    return this.workers.length + 1
  }

  /** Starts `replicas - 1` workers and waits until each has built its replica. */
  static async start(replicas: number, init: Omit<ReplicaInit, 'index'>, exchange: GradientExchange): Promise<ReplicaWorkers> {
    const workers = Array.from({ length: replicas - 1 }, (_, k) => new WorkerReplica(k + 1, startWorker({ ...init, index: k + 1 })))
    const pool = new ReplicaWorkers(workers, exchange)
    try {
      await Promise.all(workers.map((w) => w.next('ready')))
    } catch (error) {
      await pool.close()
      throw error
    }
    return pool
  }

  /** Sends each worker its share of a batch (shares[0] is the main thread's). */
  step(shares: readonly Int32Array[], epoch: number, step: number, parity: number): void {
    this.workers.forEach((w) => w.post({ type: 'step', indices: shares[w.index], epoch, step, parity }))
  }

  /** Every worker's loss, correct count and weight for the step, once its gradients are in the exchange. */
  gradients(): Promise<Extract<ReplicaReply, { type: 'grads' }>[]> {
    return Promise.all(this.workers.map((w) => w.next('grads')))
  }

  apply(weights: number[], learningRate: number, parity: number): void {
    this.workers.forEach((w) => w.post({ type: 'apply', weights, learningRate, parity }))
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()))
  }
}
