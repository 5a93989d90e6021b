import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  noise,
  write16BitPng,
  writeCmykJpeg,
  writeDecompressionBomb,
  writeExifRotatedJpeg,
  writeGrayscalePng,
  writeRgbaPng,
  writeTextAsJpg,
  writeTruncatedJpeg,
  writeZeroByteFile,
  type ExifRotatedJpeg
} from '../../../test/generators/images'
import { decodeForModel, fileProblem, inspectImage, MAX_INPUT_PIXELS, type DecodedPixels } from './decode'

let dir: string
let rotated: ExifRotatedJpeg
const file = (name: string): string => join(dir, name)

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fs-decode-'))
  rotated = await writeExifRotatedJpeg(file('rotated.jpg'), 64, 32)
  await Promise.all([
    writeZeroByteFile(file('zero.jpg')),
    writeTruncatedJpeg(file('truncated.jpg')),
    writeTextAsJpg(file('text.jpg')),
    writeGrayscalePng(file('grey.png'), 100, 16),
    writeCmykJpeg(file('cmyk.jpg'), [200, 40, 40], 16),
    writeRgbaPng(file('rgba.png'), [0, 0, 255], 16),
    write16BitPng(file('16bit.png'), [65535, 32896, 0], 16),
    writeDecompressionBomb(file('bomb.png')),
    sharp(noise(24, 24, 3, 5), { raw: { width: 24, height: 24, channels: 3 } }).png().toFile(file('noise-24.png')),
    sharp(noise(32, 32, 3, 6), { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(file('noise-32.png'))
  ])
  const png = await sharp(noise(64, 64, 3, 9), { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer()
  await writeFile(file('truncated.png'), png.subarray(0, Math.floor(png.length * 0.6)))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** The RGB triple at (x, y) of a decoded image. */
function pixel(decoded: DecodedPixels, x: number, y: number): number[] {
  const i = (y * decoded.width + x) * 3
  return [...decoded.data.subarray(i, i + 3)]
}

function expectClose(actual: number[], expected: readonly number[], tolerance: number): void {
  expect(actual).toHaveLength(expected.length)
  actual.forEach((v, c) => expect(Math.abs(v - expected[c]), `channel ${c}: ${actual} vs ${expected}`).toBeLessThanOrEqual(tolerance))
}

async function decoded(path: string, size: number, options?: Parameters<typeof decodeForModel>[2]): Promise<DecodedPixels> {
  const result = await decodeForModel(path, size, options)
  if (!result.ok) throw new Error(`expected ${path} to decode: ${result.reason}`)
  expect(result.data).toHaveLength(size * size * 3)
  return result
}

describe('inspectImage: bad files become reasons, never exceptions', () => {
  it.each([
    ['zero.jpg', 'empty', /^empty file \(0 bytes\)$/],
    ['text.jpg', 'not_an_image', /^not an image \(unsupported or unknown format\)$/],
    ['truncated.jpg', 'corrupt', /^corrupt or truncated JPEG: premature end of JPEG image$/],
    ['truncated.png', 'corrupt', /^corrupt or truncated PNG: /],
    ['bomb.png', 'too_large', /^image too large: 30000×30000 = 900 MP exceeds the 100 MP limit \(possible decompression bomb\)$/],
    ['missing.jpg', 'not_found', /^file not found/]
  ])('%s -> %s', async (name, code, reason) => {
    const result = await inspectImage(file(name))
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.code).toBe(code)
    expect(result.reason).toMatch(reason)
  })

  it('gives the same reasons for a buffer as for its path', async () => {
    const { readFile } = await import('node:fs/promises')
    const result = await inspectImage(await readFile(file('truncated.jpg')))
    expect(result).toMatchObject({ ok: false, code: 'corrupt' })
  })

  it('describes permission and folder errors in words', () => {
    expect(fileProblem(Object.assign(new Error('x'), { code: 'EACCES' }))).toEqual({ ok: false, code: 'unreadable', reason: 'unreadable: permission denied' })
    expect(fileProblem(Object.assign(new Error('x'), { code: 'EISDIR' })).reason).toMatch(/folder/)
  })

  it.skipIf(process.getuid?.() === 0)('reports a file without read permission (skipped when run as root, who can read any file)', async () => {
    const path = file('locked.png')
    await writeGrayscalePng(path)
    await chmod(path, 0)
    expect(await inspectImage(path)).toMatchObject({ ok: false, reason: 'unreadable: permission denied' })
  })

  it('reports a folder passed as a file', async () => {
    expect(await inspectImage(dir)).toMatchObject({ ok: false, code: 'unreadable' })
  })

  it('refuses the bomb from its header, without decoding it', async () => {
    const started = performance.now()
    expect(await decodeForModel(file('bomb.png'), 32)).toMatchObject({ ok: false, code: 'too_large' })
    expect(performance.now() - started).toBeLessThan(1000)
    expect(MAX_INPUT_PIXELS).toBe(100_000_000)
  })

  it.each(['zero.jpg', 'text.jpg', 'truncated.jpg', 'truncated.png'])('decodeForModel reports %s too', async (name) => {
    expect((await decodeForModel(file(name), 8)).ok).toBe(false)
  })
})

describe('inspectImage: what a good file is', () => {
  it('reports the displayed size of an EXIF orientation 6 JPEG (width and height swapped)', async () => {
    expect(await inspectImage(rotated.path)).toMatchObject({
      ok: true,
      width: rotated.storedHeight,
      height: rotated.storedWidth,
      orientation: 6,
      format: 'jpeg',
      channels: 3,
      bitDepth: 8,
      hasAlpha: false
    })
  })

  it.each([
    ['grey.png', { channels: 1, space: 'b-w', bitDepth: 8, hasAlpha: false, format: 'png' }],
    ['cmyk.jpg', { channels: 4, space: 'cmyk', bitDepth: 8, hasAlpha: false, format: 'jpeg' }],
    ['rgba.png', { channels: 4, space: 'srgb', bitDepth: 8, hasAlpha: true, format: 'png' }],
    ['16bit.png', { channels: 3, space: 'rgb16', bitDepth: 16, hasAlpha: false, format: 'png' }]
  ])('%s', async (name, expected) => {
    const info = await inspectImage(file(name))
    expect(info).toMatchObject({ ok: true, width: 16, height: 16, ...expected })
    expect(info).not.toHaveProperty('orientation')
    expect(info).not.toHaveProperty('warnings')
  })
})

describe('decodeForModel', () => {
  it('returns upright pixels for EXIF orientation 6', async () => {
    // Rotating 90° clockwise puts the stored top-left (red) at the top right, the stored
    // top-right (green) at the bottom right and the stored bottom half (blue) on the left.
    const image = await decoded(rotated.path, 32, { fit: 'fill' })
    expectClose(pixel(image, 31, 0), rotated.storedTopLeft, 40)
    expectClose(pixel(image, 31, 31), rotated.storedTopRight, 40)
    expectClose(pixel(image, 0, 0), rotated.storedBottom, 40)
    expectClose(pixel(image, 0, 31), rotated.storedBottom, 40)
  })

  it('swaps to BGR on request', async () => {
    const image = await decoded(rotated.path, 32, { fit: 'fill', channelOrder: 'bgr' })
    expectClose(pixel(image, 31, 0), [0, 0, 255], 40)
  })

  it('expands greyscale to three equal channels', async () => {
    const image = await decoded(file('grey.png'), 16)
    expect(pixel(image, 0, 0)).toEqual([100, 100, 100])
    expect(pixel(image, 15, 15)).toEqual([100, 100, 100])
  })

  it('converts CMYK to sRGB', async () => {
    const [r, g, b] = pixel(await decoded(file('cmyk.jpg'), 16), 8, 8)
    expectClose([r, g, b], [200, 40, 40], 32)
  })

  it('flattens transparency onto white', async () => {
    const image = await decoded(file('rgba.png'), 16)
    expect(pixel(image, 2, 2)).toEqual([0, 0, 255])
    expect(pixel(image, 13, 2)).toEqual([255, 255, 255])
  })

  it('reduces 16-bit to 8-bit', async () => {
    const image = await decoded(file('16bit.png'), 16)
    expect(image.data).toBeInstanceOf(Uint8Array)
    expect(pixel(image, 5, 5)).toEqual([255, 128, 0])
  })

  it('uses an image already at size×size as is, without resampling', async () => {
    const image = await decoded(file('noise-24.png'), 24)
    expect(Buffer.from(image.data).equals(noise(24, 24, 3, 5))).toBe(true)
  })

  it('resizes other images to size×size', async () => {
    const down = await decoded(file('noise-32.png'), 24)
    expect(Buffer.from(down.data).equals(noise(24, 24, 3, 6))).toBe(false)
    await decoded(rotated.path, 20)
    await decoded(rotated.path, 20, { fit: 'contain' })
  })

  it('rejects a nonsensical size', async () => {
    await expect(decodeForModel(file('grey.png'), 0)).rejects.toThrow(RangeError)
  })
})
