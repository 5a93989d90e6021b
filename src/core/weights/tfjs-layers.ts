/**
 * TF.js layers-model folders: `model.json` (topology + `weightsManifest`) and binary shards.
 *
 * Weights are decoded here from the manifest rather than through `tf.io.decodeWeights`, which
 * would allocate every weight as a tensor on whatever backend the process runs (wasm heap
 * included) only for us to copy it out again. The decoding follows tfjs-core's io_utils
 * (float32/int32/bool, and uint8/uint16 affine or float16 quantization); the tests check it
 * against tfjs itself.
 */
import { readFile, stat } from 'node:fs/promises'
import { dirname, join, relative, resolve, isAbsolute } from 'node:path'
import type { io } from '@tensorflow/tfjs'
import { WeightFileError } from './weight-file-error'
import { float16BitsToNumber } from './safetensors'
import type { Preprocessing } from './vgg-weights'

export type TfjsManifestEntry = io.WeightsManifestEntry

export interface TfjsTensor {
  /** As in the manifest. */
  name: string
  shape: number[]
  data: Float32Array
}

export interface TfjsLayersModel {
  modelJsonPath: string
  format?: string
  userDefinedMetadata?: Record<string, unknown>
  /** Keyed by `${layer}/kernel` or `${layer}/bias` where the name is recognised, else the manifest name. */
  tensors: Map<string, TfjsTensor>
}

/** The key under `userDefinedMetadata` that carries a Preprocessing description. */
export const TFJS_PREPROCESSING_KEY = 'preprocessing'

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * `block1_conv1/kernel`, `vgg16/block1_conv1/kernel`, `block1_conv1/kernel:0` or tfjs's
 * uniquified `block1_conv1/kernel_1` -> `block1_conv1/kernel`; other names are kept.
 */
export function tfjsLogicalName(name: string): string {
  const m = /(?:^|\/)([A-Za-z0-9_]+)\/(kernel|bias)(?:_\d+)?(?::\d+)?$/.exec(name)
  return m ? `${m[1]}/${m[2]}` : name
}

function bytesPerValue(file: string, spec: TfjsManifestEntry): number {
  if (spec.quantization) {
    const q = spec.quantization.dtype
    if (q === 'uint8') return 1
    if (q === 'uint16' || q === 'float16') return 2
    throw new WeightFileError(file, `weight ${spec.name} has unsupported quantization ${String(q)}`, spec.name)
  }
  if (spec.dtype === 'float32' || spec.dtype === 'int32') return 4
  if (spec.dtype === 'bool') return 1
  throw new WeightFileError(file, `weight ${spec.name} has unsupported dtype ${spec.dtype}`, spec.name)
}

function validateSpec(file: string, value: unknown): TfjsManifestEntry {
  if (!isRecord(value) || typeof value.name !== 'string') throw new WeightFileError(file, 'invalid weightsManifest: an entry has no name')
  const { name, shape, dtype } = value
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new WeightFileError(file, `invalid weightsManifest: weight ${name} has invalid shape ${JSON.stringify(shape)}`, name)
  }
  if (typeof dtype !== 'string') throw new WeightFileError(file, `invalid weightsManifest: weight ${name} has no dtype`, name)
  return value as unknown as TfjsManifestEntry
}

/**
 * Decode one manifest group's concatenated shard bytes, in manifest order. Every value becomes
 * float32; the byte count must match the manifest exactly.
 */
export function decodeTfjsWeights(file: string, bytes: Uint8Array, specs: readonly TfjsManifestEntry[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>()
  let offset = 0
  for (const spec of specs) {
    const n = spec.shape.reduce((a, b) => a * b, 1)
    const size = n * bytesPerValue(file, spec)
    if (offset + size > bytes.byteLength) {
      throw new WeightFileError(
        file,
        `weight shards are truncated: tensor ${spec.name} needs bytes ${offset}..${offset + size}, the shards hold ${bytes.byteLength}`,
        spec.name
      )
    }
    // Copy into a fresh, aligned buffer that does not keep the shards alive. (Not slice():
    // on a Node Buffer it returns a view.)
    const raw = new Uint8Array(size)
    raw.set(bytes.subarray(offset, offset + size))
    offset += size
    const values = new Float32Array(n)
    const q = spec.quantization
    if (q) {
      if (q.dtype === 'float16') {
        const half = new Uint16Array(raw.buffer)
        for (let i = 0; i < n; i++) values[i] = float16BitsToNumber(half[i])
      } else {
        if (typeof q.scale !== 'number' || typeof q.min !== 'number') {
          throw new WeightFileError(file, `weight ${spec.name} is ${q.dtype}-quantized but has no scale and min`, spec.name)
        }
        const ints = q.dtype === 'uint8' ? raw : new Uint16Array(raw.buffer)
        for (let i = 0; i < n; i++) values[i] = ints[i] * q.scale + q.min
      }
    } else if (spec.dtype === 'float32') {
      values.set(new Float32Array(raw.buffer))
    } else if (spec.dtype === 'int32') {
      values.set(new Int32Array(raw.buffer))
    } else {
      values.set(raw)
    }
    out.set(spec.name, values)
  }
  if (offset !== bytes.byteLength) {
    throw new WeightFileError(file, `weight shards hold ${bytes.byteLength} bytes but the manifest describes ${offset}`)
  }
  return out
}

function isTriple(value: unknown): value is [number, number, number] {
  return Array.isArray(value) && value.length === 3 && value.every((v) => typeof v === 'number' && Number.isFinite(v))
}

/** A Preprocessing from model metadata; undefined if absent, an error if malformed. */
export function parsePreprocessing(file: string, value: unknown): Preprocessing | undefined {
  if (value === undefined) return undefined
  const bad = (): WeightFileError =>
    new WeightFileError(file, `userDefinedMetadata.${TFJS_PREPROCESSING_KEY} is not a valid preprocessing description: ${JSON.stringify(value)}`)
  if (!isRecord(value)) throw bad()
  if (value.kind === 'torchvision') {
    const { channelOrder, scale, mean, std } = value
    if (channelOrder !== 'RGB' || typeof scale !== 'number' || !isTriple(mean) || !isTriple(std) || std.some((s) => s === 0)) throw bad()
    return { kind: 'torchvision', channelOrder, scale, mean: [...mean], std: [...std] }
  }
  if (value.kind === 'caffe') {
    const { channelOrder, mean } = value
    if (channelOrder !== 'BGR' || !isTriple(mean)) throw bad()
    return { kind: 'caffe', channelOrder, mean: [...mean] }
  }
  throw bad()
}

/** Resolve a folder or its model.json to the model.json path. */
export async function tfjsModelJsonPath(path: string): Promise<string> {
  const s = await stat(path)
  return s.isDirectory() ? join(path, 'model.json') : path
}

/** Read a TF.js layers-model folder (or its model.json) with all weights as float32. */
export async function readTfjsLayersModel(path: string): Promise<TfjsLayersModel> {
  const modelJsonPath = await tfjsModelJsonPath(path)
  let json: unknown
  try {
    json = JSON.parse(await readFile(modelJsonPath, 'utf8'))
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    if (err.code === 'ENOENT') throw new WeightFileError(modelJsonPath, 'no model.json in the folder')
    throw new WeightFileError(modelJsonPath, `invalid model.json: ${err.message}`)
  }
  if (!isRecord(json) || !Array.isArray(json.weightsManifest)) {
    throw new WeightFileError(modelJsonPath, 'not a TF.js model: model.json has no weightsManifest')
  }
  const dir = dirname(modelJsonPath)
  const tensors = new Map<string, TfjsTensor>()
  for (const group of json.weightsManifest as unknown[]) {
    if (!isRecord(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new WeightFileError(modelJsonPath, 'invalid weightsManifest: each group needs paths and weights')
    }
    const specs = group.weights.map((w) => validateSpec(modelJsonPath, w))
    const shards: Uint8Array[] = []
    for (const p of group.paths) {
      if (typeof p !== 'string' || isAbsolute(p) || relative(dir, resolve(dir, p)).startsWith('..')) {
        throw new WeightFileError(modelJsonPath, `weight shard path ${JSON.stringify(p)} points outside the model folder`)
      }
      try {
        shards.push(await readFile(resolve(dir, p)))
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new WeightFileError(modelJsonPath, `missing weight shard ${p}`)
        throw e
      }
    }
    const bytes = shards.length === 1 ? shards[0] : Buffer.concat(shards)
    const decoded = decodeTfjsWeights(modelJsonPath, bytes, specs)
    for (const spec of specs) {
      if (spec.group === 'optimizer') continue
      const key = tfjsLogicalName(spec.name)
      const previous = tensors.get(key)
      if (previous) throw new WeightFileError(modelJsonPath, `weights ${previous.name} and ${spec.name} both map to ${key}`, spec.name)
      tensors.set(key, { name: spec.name, shape: [...spec.shape], data: decoded.get(spec.name) as Float32Array })
    }
  }
  return {
    modelJsonPath,
    format: typeof json.format === 'string' ? json.format : undefined,
    userDefinedMetadata: isRecord(json.userDefinedMetadata) ? json.userDefinedMetadata : undefined,
    tensors
  }
}
