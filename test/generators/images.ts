/**
 * Real image files for the data-layer tests and the end-to-end tests: a labelled folder whose
 * classes a model can tell apart, and one writer per awkward case an import must survive.
 * Every writer is deterministic and returns what a test needs to check the result.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises'
import { createDeflate, constants as zlibConstants, crc32 } from 'node:zlib'
import { join } from 'node:path'
import sharp from 'sharp'
import { seededRandom } from '../../src/core/seeded-random'

export type Rgb = readonly [number, number, number]

export interface ImageFolderOptions {
  /** A number of classes (named class-0, class-1, ...) or the class names. */
  classes: number | readonly string[]
  perClass: number
  /** Side of the square images in pixels. Default 64. */
  size?: number
  format?: 'jpeg' | 'png'
  /** 'class-folders' (default): dir/<class>/<file>; 'flat': every file directly in dir. */
  layout?: 'class-folders' | 'flat'
  seed?: number
}

export interface GeneratedImage {
  path: string
  label: string
}

/**
 * Writes perClass images for each class. Each class has its own hue and shape (disc, square,
 * stripes, cross, ring, ...); position, scale, background and noise vary per image, so the
 * classes are learnable but no two images are identical.
 */
export async function writeImageFolder(dir: string, options: ImageFolderOptions): Promise<GeneratedImage[]> {
  const names = typeof options.classes === 'number' ? Array.from({ length: options.classes }, (_, i) => `class-${i}`) : [...options.classes]
  const size = options.size ?? 64
  const format = options.format ?? 'jpeg'
  const flat = options.layout === 'flat'
  const random = seededRandom(options.seed ?? 1)
  const images: GeneratedImage[] = []
  await mkdir(dir, { recursive: true })
  for (const [k, label] of names.entries()) {
    const folder = flat ? dir : join(dir, label)
    await mkdir(folder, { recursive: true })
    const colour = hueToRgb(k / names.length)
    for (let n = 0; n < options.perClass; n++) {
      const pixels = drawClassImage(size, k, colour, random)
      const file = join(folder, `${flat ? `${label}-` : ''}${String(n).padStart(4, '0')}.${format === 'jpeg' ? 'jpg' : 'png'}`)
      const image = sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
      await (format === 'jpeg' ? image.jpeg({ quality: 90 }) : image.png()).toFile(file)
      images.push({ path: file, label })
    }
  }
  return images
}

export async function writeZeroByteFile(path: string): Promise<string> {
  await writeFile(path, Buffer.alloc(0))
  return path
}

/** A noisy JPEG cut off in the middle of its entropy-coded data: the header still reads. */
export async function writeTruncatedJpeg(path: string, size = 64): Promise<string> {
  const full = await sharp(noise(size, size, 3, 7), { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: 90 }).toBuffer()
  await writeFile(path, full.subarray(0, Math.floor(full.length * 0.6)))
  return path
}

export async function writeTextAsJpg(path: string): Promise<string> {
  await writeFile(path, 'This is a text file, not a photo.\n')
  return path
}

/** A one-channel 8-bit PNG of a single grey value. */
export async function writeGrayscalePng(path: string, value = 100, size = 16): Promise<string> {
  // Without toColourspace('b-w') sharp would write the single channel out as RGB.
  await sharp(Buffer.alloc(size * size, value), { raw: { width: size, height: size, channels: 1 } }).toColourspace('b-w').png().toFile(path)
  return path
}

/** A four-channel CMYK JPEG of a single colour given in sRGB (it decodes back to about that colour). */
export async function writeCmykJpeg(path: string, rgb: Rgb = [200, 40, 40], size = 16): Promise<string> {
  await sharp(solid(size, size, rgb), { raw: { width: size, height: size, channels: 3 } }).toColourspace('cmyk').jpeg({ quality: 95 }).toFile(path)
  return path
}

/** An RGBA PNG: left half opaque `rgb`, right half fully transparent. */
export async function writeRgbaPng(path: string, rgb: Rgb = [0, 0, 255], size = 16): Promise<string> {
  const pixels = Buffer.alloc(size * size * 4)
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size / 2; x++) {
      const i = (y * size + x) * 4
      pixels.set([...rgb, 255], i)
    }
  }
  await sharp(pixels, { raw: { width: size, height: size, channels: 4 } }).png().toFile(path)
  return path
}

/** A 16-bit-per-channel RGB PNG of one colour, given as 16-bit values. */
export async function write16BitPng(path: string, rgb16: Rgb = [65535, 32896, 0], size = 16): Promise<string> {
  const pixels = new Uint16Array(size * size * 3)
  for (let i = 0; i < pixels.length; i += 3) pixels.set(rgb16, i)
  await sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).toColourspace('rgb16').png().toFile(path)
  return path
}

export interface ExifRotatedJpeg {
  path: string
  /** Stored (sensor) size; displayed size is height×width. */
  storedWidth: number
  storedHeight: number
  /** Colours of the stored image's quadrants: top-left red, top-right green, bottom half blue. */
  storedTopLeft: Rgb
  storedTopRight: Rgb
  storedBottom: Rgb
}

/**
 * A landscape JPEG with EXIF orientation 6 (rotate 90° clockwise to display): it displays as
 * portrait, and the stored top-left (red) quadrant displays at the top right.
 */
export async function writeExifRotatedJpeg(path: string, storedWidth = 64, storedHeight = 32): Promise<ExifRotatedJpeg> {
  const red: Rgb = [255, 0, 0]
  const green: Rgb = [0, 255, 0]
  const blue: Rgb = [0, 0, 255]
  const pixels = Buffer.alloc(storedWidth * storedHeight * 3)
  for (let y = 0; y < storedHeight; y++) {
    for (let x = 0; x < storedWidth; x++) {
      pixels.set(y >= storedHeight / 2 ? blue : x < storedWidth / 2 ? red : green, (y * storedWidth + x) * 3)
    }
  }
  await sharp(pixels, { raw: { width: storedWidth, height: storedHeight, channels: 3 } })
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toFile(path)
  return { path, storedWidth, storedHeight, storedTopLeft: red, storedTopRight: green, storedBottom: blue }
}

/** A byte-for-byte copy: same content hash, different path. */
export async function writeDuplicate(source: string, path: string): Promise<string> {
  await copyFile(source, path)
  return path
}

/**
 * A valid PNG whose header says width×height (default 30000×30000 = 900 MP): 1-bit greyscale,
 * all black, so the compressed data is ~110 kB and written in well under a second, while a
 * decoder that trusted it would allocate gigabytes.
 */
export async function writeDecompressionBomb(path: string, width = 30_000, height = 30_000): Promise<string> {
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header[8] = 1 // bit depth
  header[9] = 0 // colour type: greyscale
  const rowBytes = 1 + Math.ceil(width / 8) // filter byte + packed pixels
  const rowsPerChunk = Math.max(1, Math.floor((4 << 20) / rowBytes))
  const zeros = Buffer.alloc(rowBytes * rowsPerChunk)
  // Run-length strategy: all-zero input compresses as well as at level 9, several times faster.
  const deflate = createDeflate({ level: 1, strategy: zlibConstants.Z_RLE })
  const parts: Buffer[] = []
  deflate.on('data', (part: Buffer) => parts.push(part))
  const finished = new Promise<void>((resolve, reject) => {
    deflate.on('end', resolve)
    deflate.on('error', reject)
  })
  for (let rows = 0; rows < height; rows += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, height - rows)
    if (!deflate.write(n === rowsPerChunk ? zeros : zeros.subarray(0, n * rowBytes))) {
      await new Promise((resolve) => deflate.once('drain', resolve))
    }
  }
  deflate.end()
  await finished
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', Buffer.concat(parts)),
    pngChunk('IEND', Buffer.alloc(0))
  ])
  await writeFile(path, png)
  return path
}

/** Deterministic noise, for images whose exact pixels a test compares. */
export function noise(width: number, height: number, channels: number, seed = 1): Buffer {
  const random = seededRandom(seed)
  const pixels = Buffer.alloc(width * height * channels)
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(random() * 256)
  return pixels
}


function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(data.length)
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body))
  return Buffer.concat([length, body, crc])
}

function solid(width: number, height: number, rgb: Rgb): Buffer {
  const pixels = Buffer.alloc(width * height * 3)
  for (let i = 0; i < pixels.length; i += 3) pixels.set(rgb, i)
  return pixels
}

function hueToRgb(hue: number): Rgb {
  const f = (n: number): number => {
    const k = (n + hue * 6) % 6
    return Math.round(255 * (1 - Math.max(0, Math.min(k, 4 - k, 1))))
  }
  return [f(5), f(3), f(1)]
}

/** One image of class `k`: shape k % 6 in the class colour on a random grey background, plus noise. */
function drawClassImage(size: number, k: number, colour: Rgb, random: () => number): Buffer {
  const pixels = Buffer.alloc(size * size * 3)
  const background = 40 + Math.floor(random() * 60)
  const cx = size * (0.35 + random() * 0.3)
  const cy = size * (0.35 + random() * 0.3)
  const r = size * (0.2 + random() * 0.15)
  const stripe = Math.max(2, Math.round(size / 10))
  const inside = (x: number, y: number): boolean => {
    const dx = x - cx
    const dy = y - cy
    switch (k % 6) {
      case 0:
        return dx * dx + dy * dy <= r * r
      case 1:
        return Math.abs(dx) <= r && Math.abs(dy) <= r
      case 2:
        return Math.floor(y / stripe) % 2 === 0
      case 3:
        return (Math.abs(dx) <= r / 3 && Math.abs(dy) <= r) || (Math.abs(dy) <= r / 3 && Math.abs(dx) <= r)
      case 4:
        return Math.abs(Math.hypot(dx, dy) - r) <= r / 3
      default:
        return Math.floor((x + y) / stripe) % 2 === 0
    }
  }
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const jitter = Math.floor((random() - 0.5) * 24)
      const base = inside(x, y) ? colour : ([background, background, background] as const)
      const i = (y * size + x) * 3
      for (let c = 0; c < 3; c++) pixels[i + c] = Math.max(0, Math.min(255, base[c] + jitter))
    }
  }
  return pixels
}
