/**
 * Image inspection and decoding with sharp.
 *
 * Every function here takes a path or a buffer and reports a bad file as a value
 * (`{ ok: false, code, reason }`), never as a thrown error, so an import can record the
 * problem and move on to the next file. `reason` is written for a person; `code` is for code.
 */
import { readFile } from 'node:fs/promises'
import sharp, { type Metadata } from 'sharp'

/** Images above this many pixels are refused before any pixel is decoded. */
export const MAX_INPUT_PIXELS = 100_000_000

/** A file path, or the file's bytes when the caller has already read them. */
export type ImageSource = string | Buffer

export type ImageProblemCode = 'empty' | 'not_found' | 'unreadable' | 'not_an_image' | 'unsupported' | 'corrupt' | 'too_large'

export interface ImageProblem {
  ok: false
  code: ImageProblemCode
  reason: string
}

export interface ImageInfo {
  ok: true
  /** As displayed: after the EXIF orientation is applied (orientations 5–8 swap width and height). */
  width: number
  height: number
  /** Channels stored in the file: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA or CMYK. */
  channels: number
  /** sharp's decoder name: 'jpeg', 'png', 'webp', 'gif', 'tiff', 'heif' (AVIF), ... */
  format: string
  hasAlpha: boolean
  /** Bits per sample (1, 2, 4, 8 or 16 for PNG; 8 for JPEG). */
  bitDepth: number
  /** The EXIF orientation tag (1–8), when the file has one. */
  orientation?: number
  /** sharp's colour space name: 'srgb', 'b-w', 'cmyk', 'rgb16', 'grey16', ... */
  space: string
  /**
   * Set when the pixels decode only by tolerating decoder warnings (e.g. stray bytes
   * before a JPEG marker): viewers show such files, so they are not rejected.
   */
  warnings?: string[]
}

export type InspectResult = ImageInfo | ImageProblem

export interface InspectOptions {
  /**
   * Decode the pixels (at reduced size where the format allows) to catch truncated or
   * corrupt data that the header alone does not reveal. Default true.
   */
  verifyPixels?: boolean
}

/** Reads a path into memory, or passes a buffer through; file-system failures become problems. */
export async function loadImageBytes(source: ImageSource): Promise<Buffer | ImageProblem> {
  if (typeof source !== 'string') return source
  try {
    return await readFile(source)
  } catch (error) {
    return fileProblem(error)
  }
}

/** Describes a file-system error (from reading an image) in words a person understands. */
export function fileProblem(error: unknown): ImageProblem {
  const code = errnoCode(error)
  switch (code) {
    case 'ENOENT':
      return problem('not_found', 'file not found (moved or deleted?)')
    case 'EACCES':
    case 'EPERM':
      return problem('unreadable', 'unreadable: permission denied')
    case 'EISDIR':
      return problem('unreadable', 'unreadable: this is a folder, not a file')
    case 'ELOOP':
      return problem('unreadable', 'unreadable: symbolic link loop')
    default:
      return problem('unreadable', `unreadable: ${code ?? (error instanceof Error ? error.message : String(error))}`)
  }
}

/**
 * Describes an image: displayed size, channels, format, depth. Refuses empty files, non-images,
 * corrupt or truncated data and images over MAX_INPUT_PIXELS (checked from the header, before
 * decoding, so a decompression bomb costs nothing).
 */
export async function inspectImage(source: ImageSource, options: InspectOptions = {}): Promise<InspectResult> {
  const bytes = await loadImageBytes(source)
  if (!Buffer.isBuffer(bytes)) return bytes
  if (bytes.length === 0) return problem('empty', 'empty file (0 bytes)')

  let metadata: Metadata
  try {
    // No pixel limit here: the header is needed to say how large the image claims to be.
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata()
  } catch (error) {
    return sharpProblem(error, bytes)
  }
  const tooLarge = checkPixelLimit(metadata.width, metadata.height)
  if (tooLarge) return tooLarge

  const info: ImageInfo = {
    ok: true,
    width: metadata.autoOrient?.width ?? metadata.width,
    height: metadata.autoOrient?.height ?? metadata.height,
    channels: metadata.channels,
    format: metadata.format,
    hasAlpha: metadata.hasAlpha,
    bitDepth: metadata.bitsPerSample ?? depthBits(metadata.depth),
    space: metadata.space
  }
  if (metadata.orientation !== undefined) info.orientation = metadata.orientation
  if (options.verifyPixels === false) return info

  const verified = await verifyPixels(bytes, metadata)
  if (verified === true) return info
  if (Array.isArray(verified)) return { ...info, warnings: verified }
  return verified
}

export type ChannelOrder = 'rgb' | 'bgr'

export interface DecodeOptions {
  /** 'bgr' for Keras/caffe-style weights. Default 'rgb'. */
  channelOrder?: ChannelOrder
  /**
   * How a non-square image becomes size×size: 'cover' scales the short side to `size` and
   * crops the centre (the usual classifier preprocessing); 'fill' stretches; 'contain' pads
   * with white. Default 'cover'.
   */
  fit?: 'cover' | 'fill' | 'contain'
}

export interface DecodedPixels {
  ok: true
  /** Interleaved (HWC) 8-bit pixels, row-major, length size*size*3. */
  data: Uint8Array
  width: number
  height: number
  channels: 3
}

/**
 * Decodes an image for the model: upright (EXIF orientation applied), sRGB, 8-bit, exactly
 * 3 channels (grey expanded, alpha flattened onto white, CMYK converted), size×size.
 * An image that is already size×size after orientation is not resampled.
 *
 * Returns 0–255 integers: the mean/std or BGR mean subtraction depends on the weights and
 * belongs to the engine's preprocessing.
 */
export async function decodeForModel(source: ImageSource, size: number, options: DecodeOptions = {}): Promise<DecodedPixels | ImageProblem> {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`decodeForModel: size must be a positive integer, got ${size}`)
  const bytes = await loadImageBytes(source)
  if (!Buffer.isBuffer(bytes)) return bytes
  if (bytes.length === 0) return problem('empty', 'empty file (0 bytes)')

  try {
    const metadata = await sharp(bytes, { limitInputPixels: false }).metadata()
    const tooLarge = checkPixelLimit(metadata.width, metadata.height)
    if (tooLarge) return tooLarge
    const width = metadata.autoOrient?.width ?? metadata.width
    const height = metadata.autoOrient?.height ?? metadata.height

    let pipeline = sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' }).rotate()
    if (width !== size || height !== size) {
      pipeline = pipeline.resize(size, size, { fit: options.fit ?? 'cover', position: 'centre', background: WHITE })
    }
    const { data, info } = await pipeline
      .flatten({ background: WHITE })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true })
    if (info.channels !== 3 || info.width !== size || info.height !== size) {
      return problem('unsupported', `unsupported: decoded to ${info.width}×${info.height}×${info.channels}, expected ${size}×${size}×3`)
    }
    const pixels = new Uint8Array(data.buffer, data.byteOffset, data.length)
    if (options.channelOrder === 'bgr') swapRedBlue(pixels)
    return { ok: true, data: pixels, width: size, height: size, channels: 3 }
  } catch (error) {
    return sharpProblem(error, bytes)
  }
}

/** Turns an error thrown by sharp into a problem a person can act on. */
export function sharpProblem(error: unknown, bytes?: Buffer): ImageProblem {
  const message = error instanceof Error ? error.message : String(error)
  if (/unsupported image format/i.test(message)) return problem('not_an_image', 'not an image (unsupported or unknown format)')
  if (/pixel limit/i.test(message)) return problem('too_large', `image too large: exceeds the ${MAX_INPUT_PIXELS / 1e6} MP limit (possible decompression bomb)`)
  if (/compression format has not been built in|not built in|no known saver|is not a known/i.test(message)) {
    return problem('unsupported', `unsupported ${formatLabel(bytes) || 'image'} encoding: ${cleanSharpMessage(message)}`)
  }
  if (/Input file is missing/i.test(message)) return problem('not_found', 'file not found (moved or deleted?)')
  return problem('corrupt', `corrupt or truncated ${formatLabel(bytes) || 'image'}: ${cleanSharpMessage(message)}`)
}

const WHITE = { r: 255, g: 255, b: 255 }

function problem(code: ImageProblemCode, reason: string): ImageProblem {
  return { ok: false, code, reason }
}

function checkPixelLimit(width: number, height: number): ImageProblem | null {
  const pixels = width * height
  if (pixels <= MAX_INPUT_PIXELS) return null
  return problem(
    'too_large',
    `image too large: ${width}×${height} = ${formatMegapixels(pixels)} MP exceeds the ${formatMegapixels(MAX_INPUT_PIXELS)} MP limit (possible decompression bomb)`
  )
}

function formatMegapixels(pixels: number): string {
  const mp = pixels / 1e6
  return Number.isInteger(mp) ? String(mp) : mp.toFixed(1)
}

/**
 * Decodes every pixel and returns true when clean,
 * the decoder's warnings when the file decodes only leniently, or the problem.
 */
async function verifyPixels(bytes: Buffer, metadata: Metadata): Promise<true | string[] | ImageProblem> {
  // Large JPEGs decode at 1/8 scale (shrink-on-load still reads all the data); for small
  // images the resize would cost more than it saves.
  const shrink = metadata.width * metadata.height > 1_000_000
  const decode = (failOn: 'warning' | 'error'): Promise<unknown> => {
    const image = sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn })
    return (shrink ? image.resize(Math.ceil(metadata.width / 8), Math.ceil(metadata.height / 8), { fit: 'inside' }) : image).raw().toBuffer()
  }
  try {
    await decode('warning')
    return true
  } catch (strictError) {
    try {
      await decode('error')
      return [cleanSharpMessage(strictError instanceof Error ? strictError.message : String(strictError))]
    } catch (error) {
      return sharpProblem(error, bytes)
    }
  }
}

/** "Input buffer has corrupt header: VipsJpeg: premature end of JPEG image\nVipsJpeg: ..." -> "premature end of JPEG image". */
function cleanSharpMessage(message: string): string {
  const lines = message
    .split('\n')
    .map((line) => line.replace(/^Input (buffer|file) has corrupt header:\s*/i, '').replace(/^[A-Za-z]*(jpeg|png|webp|gif|tiff|heif|vips)[a-z]*:\s*/i, '').trim())
    .filter((line) => line.length > 0)
  return [...new Set(lines)].join('; ') || message
}

/** Names the format from the file's magic bytes, for messages about files sharp cannot open. */
function formatLabel(bytes: Buffer | undefined): string {
  if (!bytes || bytes.length < 4) return ''
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'JPEG'
  if (bytes.readUInt32BE(0) === 0x89504e47) return 'PNG'
  if (bytes.toString('latin1', 0, 4) === 'GIF8') return 'GIF'
  if (bytes.length >= 12 && bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP') return 'WebP'
  const tiff = bytes.toString('latin1', 0, 4)
  if (tiff === 'II*\0' || tiff === 'MM\0*') return 'TIFF'
  if (bytes.length >= 12 && bytes.toString('latin1', 4, 8) === 'ftyp') return 'HEIF/AVIF'
  return ''
}

function depthBits(depth: string): number {
  switch (depth) {
    case 'uchar':
    case 'char':
      return 8
    case 'ushort':
    case 'short':
      return 16
    case 'double':
    case 'complex':
      return 64
    case 'dpcomplex':
      return 128
    default:
      return 32
  }
}

function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code
    if (typeof code === 'string') return code
  }
  return undefined
}

function swapRedBlue(pixels: Uint8Array): void {
  for (let i = 0; i < pixels.length; i += 3) {
    const r = pixels[i]
    pixels[i] = pixels[i + 2]
    pixels[i + 2] = r
  }
}
