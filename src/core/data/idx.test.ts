import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  encodeIdxImages,
  encodeIdxLabels,
  idxImagePixels,
  idxImageToPng,
  IdxFormatError,
  readIdxDataset,
  readIdxImages,
  readIdxLabels,
  writeIdxImages,
  writeIdxLabels,
  type IdxImages,
  type IdxLabels
} from './idx'

let dir: string
const path = (name: string): string => join(dir, name)

// 5 images of 4 rows × 3 columns: pixel value = 50*image + 3*row + col, distinct everywhere.
const images: IdxImages = {
  count: 5,
  rows: 4,
  cols: 3,
  pixels: Uint8Array.from({ length: 5 * 4 * 3 }, (_, i) => 50 * Math.floor(i / 12) + (i % 12))
}
const labels: IdxLabels = { count: 5, labels: Uint8Array.from([7, 2, 1, 0, 4]) }

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fs-idx-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function idxError(promise: Promise<unknown>): Promise<IdxFormatError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e
  )
  expect(error).toBeInstanceOf(IdxFormatError)
  return error as IdxFormatError
}

describe('IDX round trip', () => {
  it.each(['', '.gz'])('writes and reads images and labels%s', async (suffix) => {
    const imagesPath = path(`train-images-idx3-ubyte${suffix}`)
    const labelsPath = path(`train-labels-idx1-ubyte${suffix}`)
    await writeIdxImages(imagesPath, images)
    await writeIdxLabels(labelsPath, labels)
    const raw = await readFile(imagesPath)
    expect(raw[0] === 0x1f && raw[1] === 0x8b).toBe(suffix === '.gz')

    const read = await readIdxDataset(imagesPath, labelsPath)
    expect(read.images).toMatchObject({ count: 5, rows: 4, cols: 3 })
    expect([...read.images.pixels]).toEqual([...images.pixels])
    expect(read.labels.count).toBe(5)
    expect([...read.labels.labels]).toEqual([7, 2, 1, 0, 4])
  })

  it('writes the MNIST header: magic 0x00000803 / 0x00000801, big-endian sizes', () => {
    expect([...encodeIdxImages(images).subarray(0, 16)]).toEqual([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 3])
    expect([...encodeIdxLabels(labels).subarray(0, 8)]).toEqual([0, 0, 8, 1, 0, 0, 0, 5])
  })

  it('turns one image into a greyscale PNG with the same pixels', async () => {
    const png = await idxImageToPng(images, 2)
    expect(await sharp(png).metadata()).toMatchObject({ format: 'png', width: 3, height: 4, channels: 1, space: 'b-w' })
    const { data, info } = await sharp(png).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true })
    expect(info.channels).toBe(1)
    expect([...data]).toEqual([...idxImagePixels(images, 2)])
    expect(data[3 * 1 + 2]).toBe(100 + 3 + 2) // row 1, column 2 of image 2
    expect(() => idxImagePixels(images, 5)).toThrow(RangeError)
  })
})

describe('malformed IDX files', () => {
  it('names a label file passed as images by its magic number', async () => {
    await writeIdxLabels(path('labels-as-images'), labels)
    const error = await idxError(readIdxImages(path('labels-as-images')))
    expect(error.file).toBe(path('labels-as-images'))
    expect(error.message).toBe(`${path('labels-as-images')}: not an IDX image file: magic number is 0x00000801 (an IDX label file), expected 0x00000803`)
  })

  it('rejects a file that is not IDX at all', async () => {
    await writeFile(path('photo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]))
    expect((await idxError(readIdxLabels(path('photo.png')))).message).toMatch(/photo\.png: not an IDX label file: magic number is 0x89504e47, expected 0x00000801$/)
  })

  it('names an unsupported IDX element type', async () => {
    const floats = Buffer.from([0, 0, 0x0d, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0])
    await writeFile(path('floats-idx3'), floats)
    expect((await idxError(readIdxImages(path('floats-idx3')))).message).toMatch(/float32 data with 3 dimensions, not supported/)
  })

  it('rejects a truncated header', async () => {
    await writeFile(path('short-header'), encodeIdxImages(images).subarray(0, 10))
    expect((await idxError(readIdxImages(path('short-header')))).message).toMatch(/short-header: truncated header: 10 bytes, an IDX image header is 16$/)
  })

  it('rejects a file shorter than its dimensions say (truncated pixels)', async () => {
    await writeFile(path('truncated-idx3'), encodeIdxImages(images).subarray(0, 16 + 50))
    expect((await idxError(readIdxImages(path('truncated-idx3')))).message).toBe(
      `${path('truncated-idx3')}: truncated: the header declares 5 images of 4×3 (60 bytes of data) but the file has only 50 after the 16-byte header`
    )
  })

  it('rejects extra bytes after the data', async () => {
    await writeFile(path('long-idx1'), Buffer.concat([encodeIdxLabels(labels), Buffer.from([1, 2])]))
    expect((await idxError(readIdxLabels(path('long-idx1')))).message).toMatch(/long-idx1: size mismatch: the header declares 5 labels \(5 bytes of data\) but the file has 7 .*\(2 extra\)$/)
  })

  it('rejects zero-sized images', async () => {
    const header = Buffer.from([0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 28])
    await writeFile(path('zero-rows'), header)
    expect((await idxError(readIdxImages(path('zero-rows')))).message).toMatch(/invalid image size 0×28/)
  })

  it('reports a count mismatch between images and labels, naming both files', async () => {
    await writeIdxImages(path('five-images'), images)
    await writeIdxLabels(path('four-labels.gz'), { count: 4, labels: labels.labels.subarray(0, 4) })
    const error = await idxError(readIdxDataset(path('five-images'), path('four-labels.gz')))
    expect(error.message).toBe(`${path('five-images')}: count mismatch: 5 images here but 4 labels in ${path('four-labels.gz')}`)
  })

  it('reports corrupt gzip data', async () => {
    const gz = gzipSync(encodeIdxImages(images))
    await writeFile(path('cut.gz'), gz.subarray(0, gz.length - 12))
    expect((await idxError(readIdxImages(path('cut.gz')))).message).toMatch(/cut\.gz: corrupt or truncated gzip data/)
  })

  it('reports a missing file', async () => {
    expect((await idxError(readIdxImages(path('nope')))).message).toBe(`${path('nope')}: file not found`)
  })
})
