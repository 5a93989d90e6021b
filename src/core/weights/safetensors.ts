/**
 * Reading and writing `.safetensors`: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {...}}`, then the raw
 * little-endian tensor bytes, offsets relative to the end of the header.
 *
 * The reader keeps the file open and reads one tensor at a time, so loading VGG16 (528 MB)
 * never holds the whole file in memory next to the converted weights.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { WeightFileError, formatShape } from './weight-file-error'

export type SafetensorsDtype =
  | 'BOOL' | 'U8' | 'I8' | 'F8_E5M2' | 'F8_E4M3' | 'I16' | 'U16' | 'F16' | 'BF16'
  | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64'

const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  F64: 8, I64: 8, U64: 8
}

export const SAFETENSORS_FLOAT_DTYPES = ['F32', 'F16', 'BF16', 'F64'] as const
export type SafetensorsFloatDtype = (typeof SAFETENSORS_FLOAT_DTYPES)[number]

// The reference implementation refuses headers above 100 MB; so do we, before allocating.
const MAX_HEADER_BYTES = 100_000_000

export interface SafetensorsTensorInfo {
  name: string
  dtype: SafetensorsDtype
  shape: number[]
  /** Byte range within the data section (which starts right after the header). */
  dataOffsets: [number, number]
}

export interface SafetensorsHeader {
  tensors: Map<string, SafetensorsTensorInfo>
  metadata?: Record<string, string>
  /** Absolute file offset of the data section. */
  dataStart: number
}

export interface SafetensorsTensorInput {
  dtype: SafetensorsDtype
  shape: readonly number[]
  data: ArrayLike<number>
}

export type SafetensorsTensorMap = Map<string, SafetensorsTensorInput> | Record<string, SafetensorsTensorInput>

export function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(DTYPE_BYTES, value)
}

export function safetensorsDtypeBytes(dtype: SafetensorsDtype): number {
  return DTYPE_BYTES[dtype]
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

// ---------------------------------------------------------------- float16 / bfloat16

let halfTable: Float32Array | undefined

function float16Table(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536)
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1
      const exp = (h >> 10) & 0x1f
      const mant = h & 0x3ff
      if (exp === 0) halfTable[h] = sign * mant * 2 ** -24
      else if (exp === 31) halfTable[h] = mant ? NaN : sign * Infinity
      else halfTable[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15)
    }
  }
  return halfTable
}

/** IEEE 754 half-precision bits -> number. */
export function float16BitsToNumber(bits: number): number {
  return float16Table()[bits & 0xffff]
}

const f32Scratch = new Float32Array(1)
const u32Scratch = new Uint32Array(f32Scratch.buffer)

/** number -> IEEE 754 half-precision bits, rounding to nearest even (overflow gives infinity). */
export function numberToFloat16Bits(value: number): number {
  f32Scratch[0] = value
  const x = u32Scratch[0]
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0)
  const e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    mant |= 0x800000
    const shift = 14 - e
    let half = mant >>> shift
    const rest = mant & ((1 << shift) - 1)
    const halfway = 1 << (shift - 1)
    if (rest > halfway || (rest === halfway && half & 1)) half++
    return sign | half
  }
  let half = (e << 10) | (mant >>> 13)
  const rest = mant & 0x1fff
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++
  return sign | half
}

/** number -> bfloat16 bits (the top half of the float32), rounding to nearest even. */
export function numberToBfloat16Bits(value: number): number {
  f32Scratch[0] = value
  const x = u32Scratch[0]
  if (Number.isNaN(f32Scratch[0])) return ((x >>> 16) & 0x8000) | 0x7fc0
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff
}

// ---------------------------------------------------------------- header parsing

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

/**
 * Parse and validate a header (the bytes after the 8-byte length). `dataLength` is the size of the data section actually present
 * in the file; every tensor must lie inside it, with no overlaps, gaps or trailing bytes.
 */
export function parseSafetensorsHeader(file: string, headerBytes: Uint8Array, dataLength: number): SafetensorsHeader {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes)
  } catch {
    throw new WeightFileError(file, 'invalid safetensors header: not UTF-8')
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    throw new WeightFileError(file, `invalid safetensors header: not valid JSON (${(e as Error).message})`)
  }
  if (!isRecord(json)) throw new WeightFileError(file, 'invalid safetensors header: expected a JSON object')

  const tensors = new Map<string, SafetensorsTensorInfo>()
  let metadata: Record<string, string> | undefined
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isRecord(entry)) throw new WeightFileError(file, 'invalid safetensors header: __metadata__ must be an object')
      metadata = {}
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw new WeightFileError(file, `invalid safetensors header: __metadata__.${k} must be a string`)
        metadata[k] = v
      }
      continue
    }
    const bad = (why: string): WeightFileError => new WeightFileError(file, `invalid safetensors header: tensor ${name} ${why}`, name)
    if (!isRecord(entry)) throw bad('is not an object')
    const { dtype, shape, data_offsets: offsets } = entry
    if (!isSafetensorsDtype(dtype)) throw bad(`has unknown dtype ${JSON.stringify(dtype)}`)
    if (!Array.isArray(shape) || !shape.every(isIndex)) throw bad(`has invalid shape ${JSON.stringify(shape)}`)
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex) || offsets[0] > offsets[1]) {
      throw bad(`has invalid data_offsets ${JSON.stringify(offsets)}`)
    }
    const [begin, end] = offsets as [number, number]
    const needed = (shape as number[]).reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype]
    if (end - begin !== needed) {
      throw bad(`has data_offsets [${begin},${end}] spanning ${end - begin} bytes, but shape ${formatShape(shape as number[])} of ${dtype} needs ${needed}`)
    }
    tensors.set(name, { name, dtype, shape: shape as number[], dataOffsets: [begin, end] })
  }

  const ordered = [...tensors.values()].sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1])
  let previous: SafetensorsTensorInfo | undefined
  for (const t of ordered) {
    const [begin, end] = t.dataOffsets
    if (end > dataLength) {
      throw new WeightFileError(
        file,
        `file is truncated: tensor ${t.name} needs bytes ${begin}..${end} of the data section, which holds only ${dataLength} bytes`,
        t.name
      )
    }
    const prevEnd = previous ? previous.dataOffsets[1] : 0
    if (previous && begin < prevEnd) {
      throw new WeightFileError(file, `invalid safetensors header: tensors ${previous.name} and ${t.name} overlap`, t.name)
    }
    if (begin > prevEnd) {
      throw new WeightFileError(
        file,
        `invalid safetensors header: ${begin - prevEnd} unindexed bytes before tensor ${t.name} (offset ${prevEnd})`,
        t.name
      )
    }
    previous = t
  }
  const covered = previous ? previous.dataOffsets[1] : 0
  if (covered < dataLength) {
    throw new WeightFileError(file, `invalid safetensors file: ${dataLength - covered} bytes after the last tensor are not described by the header`)
  }
  return { tensors, metadata, dataStart: 8 + headerBytes.byteLength }
}

// ---------------------------------------------------------------- decoding

function decodeFloat32(file: string, info: SafetensorsTensorInfo, bytes: Uint8Array): Float32Array {
  const n = bytes.byteLength / DTYPE_BYTES[info.dtype]
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  switch (info.dtype) {
    case 'F32': {
      if (HOST_LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n)
      const out = new Float32Array(n)
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true)
      return out
    }
    case 'F64': {
      const out = new Float32Array(n)
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true)
      return out
    }
    case 'F16': {
      const table = float16Table()
      const out = new Float32Array(n)
      for (let i = 0; i < n; i++) out[i] = table[view.getUint16(i * 2, true)]
      return out
    }
    case 'BF16': {
      const out = new Float32Array(n)
      const bits = new Uint32Array(out.buffer)
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(i * 2, true) << 16
      return out
    }
    default:
      throw nonFloatError(file, info)
  }
}

function nonFloatError(file: string, info: SafetensorsTensorInfo): WeightFileError {
  return new WeightFileError(
    file,
    `tensor ${info.name} has dtype ${info.dtype}; only ${SAFETENSORS_FLOAT_DTYPES.join(', ')} can be read as weights`,
    info.name
  )
}

/** An open `.safetensors` file: header parsed and validated, tensors read on demand. */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly header: SafetensorsHeader
  ) {}

  get tensors(): ReadonlyMap<string, SafetensorsTensorInfo> {
    return this.header.tensors
  }

  get metadata(): Readonly<Record<string, string>> | undefined {
    return this.header.metadata
  }

  static async open(path: string): Promise<SafetensorsFile> {
    const handle = await open(path, 'r')
    try {
      const { size } = await handle.stat()
      if (size < 8) throw new WeightFileError(path, `file is truncated or not safetensors: only ${size} bytes`)
      const lengthBytes = new Uint8Array(8)
      await handle.read(lengthBytes, 0, 8, 0)
      const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true)
      if (headerLength > BigInt(size - 8)) {
        throw new WeightFileError(path, `safetensors header length ${headerLength} exceeds the file size (${size} bytes): file truncated or not safetensors`)
      }
      if (headerLength > BigInt(MAX_HEADER_BYTES)) {
        throw new WeightFileError(path, `safetensors header length ${headerLength} is larger than the 100 MB limit`)
      }
      const n = Number(headerLength)
      const headerBytes = new Uint8Array(n)
      await handle.read(headerBytes, 0, n, 8)
      return new SafetensorsFile(path, handle, parseSafetensorsHeader(path, headerBytes, size - 8 - n))
    } catch (e) {
      await handle.close()
      throw e
    }
  }

  info(name: string): SafetensorsTensorInfo {
    const info = this.header.tensors.get(name)
    if (!info) throw new WeightFileError(this.path, `missing tensor ${name}`, name)
    return info
  }

  /** Raw little-endian bytes of one tensor. */
  async readBytes(name: string): Promise<Uint8Array> {
    const info = this.info(name)
    const [begin, end] = info.dataOffsets
    const bytes = new Uint8Array(end - begin)
    let done = 0
    while (done < bytes.byteLength) {
      const { bytesRead } = await this.handle.read(bytes, done, bytes.byteLength - done, this.header.dataStart + begin + done)
      if (bytesRead === 0) {
        throw new WeightFileError(this.path, `file is truncated: tensor ${name} ends past the end of the file`, name)
      }
      done += bytesRead
    }
    return bytes
  }

  /** One floating-point tensor (F32, F16, BF16 or F64) converted to float32. */
  async readFloat32(name: string): Promise<Float32Array> {
    const info = this.info(name)
    if (!(SAFETENSORS_FLOAT_DTYPES as readonly string[]).includes(info.dtype)) throw nonFloatError(this.path, info)
    return decodeFloat32(this.path, info, await this.readBytes(name))
  }

  async close(): Promise<void> {
    await this.handle.close()
  }
}

export interface SafetensorsFloatTensor {
  dtype: SafetensorsDtype
  shape: number[]
  data: Float32Array
}

/** Read a whole file whose tensors are all floating point. */
export async function readSafetensors(path: string): Promise<{ tensors: Map<string, SafetensorsFloatTensor>; metadata?: Record<string, string> }> {
  const file = await SafetensorsFile.open(path)
  try {
    const tensors = new Map<string, SafetensorsFloatTensor>()
    for (const info of file.tensors.values()) {
      tensors.set(info.name, { dtype: info.dtype, shape: info.shape, data: await file.readFloat32(info.name) })
    }
    return { tensors, metadata: file.metadata ? { ...file.metadata } : undefined }
  } finally {
    await file.close()
  }
}

// ---------------------------------------------------------------- writing

function encodeTensor(name: string, t: SafetensorsTensorInput): Uint8Array {
  const n = t.shape.reduce((a, b) => a * b, 1)
  if (t.data.length !== n) {
    throw new Error(`safetensors writer: tensor ${name} has ${t.data.length} values but shape ${formatShape(t.shape)} needs ${n}`)
  }
  const bytes = new Uint8Array(n * DTYPE_BYTES[t.dtype])
  const view = new DataView(bytes.buffer)
  const d = t.data
  switch (t.dtype) {
    case 'F32':
      if (HOST_LITTLE_ENDIAN && d instanceof Float32Array) bytes.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength))
      else for (let i = 0; i < n; i++) view.setFloat32(i * 4, d[i], true)
      break
    case 'F64':
      for (let i = 0; i < n; i++) view.setFloat64(i * 8, d[i], true)
      break
    case 'F16':
      for (let i = 0; i < n; i++) view.setUint16(i * 2, numberToFloat16Bits(d[i]), true)
      break
    case 'BF16':
      for (let i = 0; i < n; i++) view.setUint16(i * 2, numberToBfloat16Bits(d[i]), true)
      break
    case 'I64':
      for (let i = 0; i < n; i++) view.setBigInt64(i * 8, BigInt(Math.trunc(d[i])), true)
      break
    case 'I32':
      for (let i = 0; i < n; i++) view.setInt32(i * 4, d[i], true)
      break
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < n; i++) view.setUint8(i, d[i])
      break
    default:
      throw new Error(`safetensors writer: dtype ${t.dtype} (tensor ${name}) is not supported for writing`)
  }
  return bytes
}

function entriesOf(tensors: SafetensorsTensorMap): [string, SafetensorsTensorInput][] {
  return tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)
}

function buildHeader(entries: [string, SafetensorsTensorInput][], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {}
  if (metadata) header.__metadata__ = metadata
  let offset = 0
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new Error('safetensors writer: __metadata__ is not a valid tensor name')
    const size = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype]
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + size] }
    offset += size
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  const padded = new Uint8Array(Math.ceil(json.byteLength / 8) * 8).fill(0x20)
  padded.set(json)
  const out = new Uint8Array(8 + padded.byteLength)
  new DataView(out.buffer).setBigUint64(0, BigInt(padded.byteLength), true)
  out.set(padded, 8)
  return out
}

/** The whole file in memory (for tests and small files). */
export function encodeSafetensors(tensors: SafetensorsTensorMap, metadata?: Record<string, string>): Uint8Array {
  const entries = entriesOf(tensors)
  const parts = [buildHeader(entries, metadata), ...entries.map(([name, t]) => encodeTensor(name, t))]
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

/** Write a file, encoding one tensor at a time. */
export async function writeSafetensors(path: string, tensors: SafetensorsTensorMap, metadata?: Record<string, string>): Promise<void> {
  const entries = entriesOf(tensors)
  const handle = await open(path, 'w')
  try {
    await handle.write(buildHeader(entries, metadata))
    for (const [name, t] of entries) await handle.write(encodeTensor(name, t))
  } finally {
    await handle.close()
  }
}
