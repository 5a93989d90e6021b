/**
 * MNIST-style IDX files: `*-images-idx3-ubyte` (N×rows×cols unsigned bytes) and
 * `*-labels-idx1-ubyte` (N unsigned bytes), plain or gzipped (detected from the bytes, not the
 * name). Header fields are big-endian.
 *
 * An IDX file is a whole dataset, so a bad one throws IdxFormatError (naming the file and what
 * is wrong) rather than returning a per-file problem value.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { gunzip, gzip } from 'node:zlib'
import { promisify } from 'node:util'
import sharp from 'sharp'

export const IDX_IMAGES_MAGIC = 0x00000803
export const IDX_LABELS_MAGIC = 0x00000801

export interface IdxImages {
  count: number
  rows: number
  cols: number
  /** count×rows×cols bytes, image after image, row-major; 0 is background in MNIST. */
  pixels: Uint8Array
}

export interface IdxLabels {
  count: number
  labels: Uint8Array
}

export class IdxFormatError extends Error {
  readonly file: string

  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`)
    this.name = 'IdxFormatError'
    this.file = file
  }
}

const gunzipAsync = promisify(gunzip)
const gzipAsync = promisify(gzip)

/** Reads and validates an IDX image file (magic 0x00000803). */
export async function readIdxImages(path: string): Promise<IdxImages> {
  return parseIdxImages(await readIdxBytes(path), path)
}

/** Reads and validates an IDX label file (magic 0x00000801). */
export async function readIdxLabels(path: string): Promise<IdxLabels> {
  return parseIdxLabels(await readIdxBytes(path), path)
}

/** Reads an image file and its label file and checks that they hold the same number of items. */
export async function readIdxDataset(imagesPath: string, labelsPath: string): Promise<{ images: IdxImages; labels: IdxLabels }> {
  const [images, labels] = await Promise.all([readIdxImages(imagesPath), readIdxLabels(labelsPath)])
  if (images.count !== labels.count) {
    throw new IdxFormatError(
      imagesPath,
      `count mismatch: ${images.count} images here but ${labels.count} labels in ${labelsPath}`
    )
  }
  return { images, labels }
}

/** Parses (already gunzipped) IDX image bytes; `name` is used in error messages. */
export function parseIdxImages(bytes: Uint8Array, name: string): IdxImages {
  checkMagic(bytes, name, IDX_IMAGES_MAGIC, 16)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const count = view.getUint32(4)
  const rows = view.getUint32(8)
  const cols = view.getUint32(12)
  if (rows === 0 || cols === 0) throw new IdxFormatError(name, `invalid image size ${rows}×${cols} in the header`)
  checkPayload(bytes, name, 16, count * rows * cols, `${count} images of ${rows}×${cols}`)
  return { count, rows, cols, pixels: bytes.subarray(16, 16 + count * rows * cols) }
}

/** Parses (already gunzipped) IDX label bytes; `name` is used in error messages. */
export function parseIdxLabels(bytes: Uint8Array, name: string): IdxLabels {
  checkMagic(bytes, name, IDX_LABELS_MAGIC, 8)
  const count = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4)
  checkPayload(bytes, name, 8, count, `${count} labels`)
  return { count, labels: bytes.subarray(8, 8 + count) }
}

export function encodeIdxImages(images: IdxImages): Buffer {
  if (images.pixels.length !== images.count * images.rows * images.cols) {
    throw new RangeError(`encodeIdxImages: ${images.pixels.length} pixel bytes for ${images.count} images of ${images.rows}×${images.cols}`)
  }
  const header = Buffer.alloc(16)
  header.writeUInt32BE(IDX_IMAGES_MAGIC, 0)
  header.writeUInt32BE(images.count, 4)
  header.writeUInt32BE(images.rows, 8)
  header.writeUInt32BE(images.cols, 12)
  return Buffer.concat([header, images.pixels])
}

export function encodeIdxLabels(labels: IdxLabels): Buffer {
  if (labels.labels.length !== labels.count) throw new RangeError(`encodeIdxLabels: ${labels.labels.length} labels for count ${labels.count}`)
  const header = Buffer.alloc(8)
  header.writeUInt32BE(IDX_LABELS_MAGIC, 0)
  header.writeUInt32BE(labels.count, 4)
  return Buffer.concat([header, labels.labels])
}

/** Writes an IDX image file, gzipped when the path ends in `.gz`. */
export async function writeIdxImages(path: string, images: IdxImages): Promise<void> {
  await writeMaybeGzipped(path, encodeIdxImages(images))
}

/** Writes an IDX label file, gzipped when the path ends in `.gz`. */
export async function writeIdxLabels(path: string, labels: IdxLabels): Promise<void> {
  await writeMaybeGzipped(path, encodeIdxLabels(labels))
}

/** The pixels of image `index` (a view, not a copy). */
export function idxImagePixels(images: IdxImages, index: number): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index >= images.count) throw new RangeError(`idx image index ${index} out of range 0..${images.count - 1}`)
  const size = images.rows * images.cols
  return images.pixels.subarray(index * size, (index + 1) * size)
}

/** Image `index` as a greyscale PNG, ready to import like any other image file. */
export async function idxImageToPng(images: IdxImages, index: number): Promise<Buffer> {
  const pixels = idxImagePixels(images, index)
  return sharp(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), {
    raw: { width: images.cols, height: images.rows, channels: 1 }
  })
    .toColourspace('b-w') // else sharp writes the one channel as RGB
    .png()
    .toBuffer()
}

async function readIdxBytes(path: string): Promise<Buffer> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (error) {
    const code = typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : ''
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : `cannot read (${code || String(error)})`
    throw new IdxFormatError(path, why)
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      return await gunzipAsync(bytes)
    } catch (error) {
      throw new IdxFormatError(path, `corrupt or truncated gzip data (${error instanceof Error ? error.message : String(error)})`)
    }
  }
  return bytes
}

function checkMagic(bytes: Uint8Array, name: string, expected: number, headerLength: number): void {
  const kind = expected === IDX_IMAGES_MAGIC ? 'image' : 'label'
  if (bytes.length < 4) throw new IdxFormatError(name, `too short to be an IDX ${kind} file (${bytes.length} bytes)`)
  const magic = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0)
  if (magic !== expected) {
    throw new IdxFormatError(name, `not an IDX ${kind} file: magic number is ${hex(magic)}${describeMagic(magic)}, expected ${hex(expected)}`)
  }
  if (bytes.length < headerLength) {
    throw new IdxFormatError(name, `truncated header: ${bytes.length} bytes, an IDX ${kind} header is ${headerLength}`)
  }
}

function checkPayload(bytes: Uint8Array, name: string, headerLength: number, expected: number, what: string): void {
  const actual = bytes.length - headerLength
  if (actual < expected) {
    throw new IdxFormatError(name, `truncated: the header declares ${what} (${expected} bytes of data) but the file has only ${actual} after the ${headerLength}-byte header`)
  }
  if (actual > expected) {
    throw new IdxFormatError(name, `size mismatch: the header declares ${what} (${expected} bytes of data) but the file has ${actual} after the ${headerLength}-byte header (${actual - expected} extra)`)
  }
}

function describeMagic(magic: number): string {
  if (magic === IDX_IMAGES_MAGIC) return ' (an IDX image file)'
  if (magic === IDX_LABELS_MAGIC) return ' (an IDX label file)'
  if (magic >>> 16 === 0) {
    const types: Record<number, string> = { 0x08: 'unsigned byte', 0x09: 'signed byte', 0x0b: 'int16', 0x0c: 'int32', 0x0d: 'float32', 0x0e: 'float64' }
    const type = types[(magic >>> 8) & 0xff]
    if (type) return ` (IDX ${type} data with ${magic & 0xff} dimensions, not supported)`
  }
  return ''
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`
}

async function writeMaybeGzipped(path: string, bytes: Buffer): Promise<void> {
  await writeFile(path, path.endsWith('.gz') ? await gzipAsync(bytes) : bytes)
}
