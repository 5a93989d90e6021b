import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import sharp from 'sharp'
import { beforeAll, describe, expect, it } from 'vitest'
import { CAFFE_PREPROCESSING, TORCHVISION_PREPROCESSING } from '../weights/vgg-weights'
import { batchLabels, batchPixels, batchSlices, decodeImageSet, deriveSeed, epochOrder, ImageDecodeError, normalizePixels } from './data-loader'

beforeAll(async () => {
  await tf.setBackend('cpu')
})

describe('seeded order', () => {
  it('each epoch is a permutation, fixed by (seed, epoch), different across epochs and seeds', () => {
    const a = epochOrder(50, 7, 1)
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i))
    expect(Array.from(epochOrder(50, 7, 1))).toEqual(Array.from(a))
    expect(Array.from(epochOrder(50, 7, 2))).not.toEqual(Array.from(a))
    expect(Array.from(epochOrder(50, 8, 1))).not.toEqual(Array.from(a))
    expect(deriveSeed(1, 2, 3)).toBe(deriveSeed(1, 2, 3))
    expect(new Set([deriveSeed(1, 2, 3), deriveSeed(1, 3, 2), deriveSeed(1, 2), deriveSeed(1, 2, 3, 0), deriveSeed(2, 2, 3)]).size).toBe(5)
  })

  it('batches cover the order once, the last one smaller', () => {
    const batches = batchSlices(Int32Array.from([4, 3, 2, 1, 0]), 2)
    expect(batches.map((b) => Array.from(b))).toEqual([[4, 3], [2, 1], [0]])
  })
})

describe('decoding and normalizing', () => {
  it('decodes once into uint8 HWC in the weights\' channel order, and batches them as floats', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fts-loader-'))
    const red = join(dir, 'red.png')
    const blue = join(dir, 'blue.png')
    await sharp({ create: { width: 40, height: 20, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toFile(red)
    await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 0, g: 0, b: 255 } } }).png().toFile(blue)
    const items = [
      { path: red, label: 1 },
      { path: blue, label: 0 }
    ]
    const rgb = await decodeImageSet(items, 32, 'RGB')
    expect(rgb.count).toBe(2)
    expect(rgb.pixels).toBeInstanceOf(Uint8Array)
    expect(rgb.pixels.length).toBe(2 * 32 * 32 * 3)
    expect(Array.from(rgb.pixels.subarray(0, 3))).toEqual([255, 0, 0])
    const bgr = await decodeImageSet(items, 32, 'BGR')
    expect(Array.from(bgr.pixels.subarray(0, 3))).toEqual([0, 0, 255])
    const x = batchPixels(rgb, [1, 0])
    expect(x.shape).toEqual([2, 32, 32, 3])
    expect(Array.from(x.dataSync().slice(0, 3))).toEqual([0, 0, 255])
    expect(Array.from(batchLabels(rgb, [1, 0]))).toEqual([0, 1])
    x.dispose()
  })

  it('names the file that fails', async () => {
    const missing = join(tmpdir(), 'fts-no-such-image.png')
    const error = await decodeImageSet([{ path: missing, label: 0 }], 32, 'RGB').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ImageDecodeError)
    expect((error as Error).message).toMatch(new RegExp(`cannot decode training image ${missing.replace(/[.]/g, '\\.')}: file not found`))
  })

  it('normalizes per the weights: torchvision (x/255 - mean)/std, caffe x - mean', () => {
    const x = tf.tensor4d([255, 0, 127.5], [1, 1, 1, 3])
    const t = normalizePixels(x, TORCHVISION_PREPROCESSING).dataSync()
    expect(t[0]).toBeCloseTo((1 - 0.485) / 0.229, 5)
    expect(t[1]).toBeCloseTo((0 - 0.456) / 0.224, 5)
    expect(t[2]).toBeCloseTo((0.5 - 0.406) / 0.225, 5)
    const c = normalizePixels(x, CAFFE_PREPROCESSING).dataSync()
    expect(Array.from(c).map((v) => +v.toFixed(3))).toEqual([255 - 103.939, -116.779, 127.5 - 123.68].map((v) => +v.toFixed(3)))
    x.dispose()
  })
})
