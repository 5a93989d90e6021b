/**
 * Training checkpoints: one directory per checkpoint holding `manifest.json` (epoch, step,
 * optimizer step counter, seed, metrics so far, and a table of tensors with offsets and CRC32s)
 * and `tensors.bin` (the raw little-endian float32 values: every model variable, WN v/g
 * included, then the optimizer's slots).
 *
 * Written atomically: everything goes into `<name>.tmp/`, is flushed to disk, and the directory
 * is then renamed to `<name>`; so a directory without `.tmp` is always complete, and a crash or
 * kill mid-write leaves only a `.tmp` that the next run removes.
 */
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import type { Preprocessing } from '../weights/vgg-weights'
import type { EpochMetrics } from './trainer-messages'
import type { OptimizerSpec, TrainerModelSpec } from './trainer-spec'

export const CHECKPOINT_FORMAT = 'finetune-studio-checkpoint'
export const CHECKPOINT_VERSION = 1
export const MANIFEST_FILE = 'manifest.json'
export const TENSORS_FILE = 'tensors.bin'

export interface CheckpointTensor {
  name: string
  shape: number[]
  data: Float32Array
}

export interface CheckpointState {
  runId: string
  /** Epochs completed (1-based number of the last finished epoch). */
  epoch: number
  /** Optimizer steps taken over the whole run. */
  globalStep: number
  /** Every random choice of the run derives from (seed, epoch, step): this is the RNG state. */
  seed: number
  stepsPerEpoch: number
  model: TrainerModelSpec
  preprocessing: Preprocessing
  classNames: string[]
  optimizer: { kind: OptimizerSpec['kind']; step: number }
  history: EpochMetrics[]
}

interface ManifestTensor {
  name: string
  shape: number[]
  dtype: 'float32'
  offset: number
  bytes: number
  crc32: number
}

interface Manifest {
  format: typeof CHECKPOINT_FORMAT
  version: number
  createdAt: string
  state: CheckpointState
  tensorsBytes: number
  tensors: ManifestTensor[]
}

/** A checkpoint that cannot be read; the message names the file at fault. */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError'
  constructor(
    readonly file: string,
    detail: string
  ) {
    super(`checkpoint ${file}: ${detail}`)
  }
}

export function checkpointName(epoch: number): string {
  return `epoch-${String(epoch).padStart(4, '0')}`
}

function bytesOf(data: Float32Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
}

/**
 * Writes a checkpoint as `<dir>/<name>` atomically and returns its path and size in bytes.
 * An existing checkpoint of that name is replaced.
 */
export async function writeCheckpoint(dir: string, name: string, state: CheckpointState, tensors: readonly CheckpointTensor[]): Promise<{ path: string; bytes: number }> {
  await mkdir(dir, { recursive: true })
  const path = join(dir, name)
  const tmp = `${path}.tmp`
  await rm(tmp, { recursive: true, force: true })
  await mkdir(tmp)
  const table: ManifestTensor[] = []
  let offset = 0
  const bin = await open(join(tmp, TENSORS_FILE), 'w')
  try {
    for (const t of tensors) {
      const size = t.shape.reduce((a, b) => a * b, 1)
      if (t.data.length !== size) throw new Error(`checkpoint tensor ${t.name} has ${t.data.length} values, shape [${t.shape.join(', ')}] needs ${size}`)
      const bytes = bytesOf(t.data)
      await bin.write(bytes, 0, bytes.length, offset)
      table.push({ name: t.name, shape: [...t.shape], dtype: 'float32', offset, bytes: bytes.length, crc32: crc32(bytes) })
      offset += bytes.length
    }
    await bin.sync()
  } finally {
    await bin.close()
  }
  const manifest: Manifest = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, createdAt: new Date().toISOString(), state, tensorsBytes: offset, tensors: table }
  const json = Buffer.from(JSON.stringify(manifest, null, 1))
  const file = await open(join(tmp, MANIFEST_FILE), 'w')
  try {
    await file.writeFile(json)
    await file.sync()
  } finally {
    await file.close()
  }
  await rm(path, { recursive: true, force: true })
  await rename(tmp, path)
  return { path, bytes: offset + json.length }
}

function isManifest(value: unknown): value is Manifest {
  if (typeof value !== 'object' || value === null) return false
  const m = value as Partial<Manifest>
  return m.format === CHECKPOINT_FORMAT && typeof m.tensorsBytes === 'number' && Array.isArray(m.tensors) && typeof m.state === 'object' && m.state !== null
}

/** Reads a checkpoint's manifest (cheap: no tensor data), checking that it is one. */
export async function readCheckpointState(path: string): Promise<{ state: CheckpointState; manifest: Manifest }> {
  const manifestPath = join(path, MANIFEST_FILE)
  let text: string
  try {
    text = await readFile(manifestPath, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new CheckpointError(manifestPath, `missing: ${path} is not a checkpoint directory${path.endsWith('.tmp') ? ' (a .tmp directory is an unfinished write)' : ''}`)
    }
    throw new CheckpointError(manifestPath, `unreadable: ${(error as Error).message}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new CheckpointError(manifestPath, `corrupt or truncated JSON (${(error as Error).message})`)
  }
  if (!isManifest(parsed)) throw new CheckpointError(manifestPath, `not a ${CHECKPOINT_FORMAT} manifest`)
  if (parsed.version > CHECKPOINT_VERSION) throw new CheckpointError(manifestPath, `version ${parsed.version} is newer than this app reads (${CHECKPOINT_VERSION})`)
  return { state: parsed.state, manifest: parsed }
}

export interface LoadedCheckpoint {
  path: string
  state: CheckpointState
  tensors: Map<string, CheckpointTensor>
}

/**
 * Reads a checkpoint written by `writeCheckpoint`. A missing, truncated or corrupt manifest or
 * tensor file throws a CheckpointError naming the file (and the tensor whose checksum fails).
 * `only` limits which tensors are read (e.g. the model's, to restore weights).
 */
export async function loadCheckpoint(path: string, only?: (name: string) => boolean): Promise<LoadedCheckpoint> {
  const { state, manifest } = await readCheckpointState(path)
  const binPath = join(path, TENSORS_FILE)
  const size = await stat(binPath).then(
    (s) => s.size,
    () => -1
  )
  if (size < 0) throw new CheckpointError(binPath, 'missing')
  if (size !== manifest.tensorsBytes) {
    throw new CheckpointError(binPath, size < manifest.tensorsBytes ? `truncated: ${size} of ${manifest.tensorsBytes} bytes` : `has ${size} bytes, the manifest says ${manifest.tensorsBytes}`)
  }
  const tensors = new Map<string, CheckpointTensor>()
  const bin = await open(binPath, 'r')
  try {
    for (const t of manifest.tensors) {
      if (only !== undefined && !only(t.name)) continue
      if (t.offset + t.bytes > size || t.bytes !== 4 * t.shape.reduce((a, b) => a * b, 1)) throw new CheckpointError(binPath, `tensor ${t.name} lies outside the file or does not match its shape`)
      const data = new Float32Array(t.bytes / 4)
      const view = bytesOf(data)
      const { bytesRead } = await bin.read(view, 0, t.bytes, t.offset)
      if (bytesRead !== t.bytes) throw new CheckpointError(binPath, `truncated inside tensor ${t.name}`)
      if (crc32(view) !== t.crc32) throw new CheckpointError(binPath, `tensor ${t.name} fails its checksum: the file is corrupt`)
      tensors.set(t.name, { name: t.name, shape: t.shape, data })
    }
  } finally {
    await bin.close()
  }
  return { path, state, tensors }
}

/** Removes `*.tmp` directories left by a write that never finished. */
export async function removeUnfinishedCheckpoints(dir: string): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[])
  await Promise.all(entries.filter((e) => e.endsWith('.tmp')).map((e) => rm(join(dir, e), { recursive: true, force: true })))
}

export async function removeCheckpoint(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true })
}
