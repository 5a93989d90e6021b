/**
 * The training data in memory: every image decoded once at the model's input size and kept as
 * uint8 HWC pixels (32x32: 3 KB an image; 224x224: 147 KB), with seeded shuffling and batching
 * into float tensors normalized for the weights.
 */
import * as tf from '@tensorflow/tfjs'
import { decodeForModel } from '../data/decode'
import { loadStoredImage } from '../data/stored-image'
import type { Preprocessing } from '../weights/vgg-weights'
import { seededRandom } from '../seeded-random'


/**
 * A 32-bit seed from a run seed and a path of integers (epoch, step, purpose...). Every random
 * choice of a run is a pure function of (seed, epoch, step), so a resumed run needs no RNG
 * state beyond the seed and where it stopped.
 */
export function deriveSeed(seed: number, ...parts: number[]): number {
  let h = (seed ^ 0x9e3779b9) >>> 0
  for (const part of [...parts, parts.length]) {
    h = Math.imul(h ^ (part >>> 0), 0x85ebca6b) >>> 0
    h ^= h >>> 13
    h = Math.imul(h, 0xc2b2ae35) >>> 0
    h ^= h >>> 16
  }
  return h
}

/** The order of the `n` training items in a 1-based epoch: a Fisher-Yates shuffle seeded by (seed, epoch). */
export function epochOrder(n: number, seed: number, epoch: number): Int32Array {
  const order = new Int32Array(n)
  for (let i = 0; i < n; i++) order[i] = i
  const random = seededRandom(deriveSeed(seed, 0x5f, epoch))
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = order[i]
    order[i] = order[j]
    order[j] = t
  }
  return order
}

export interface ImageSet {
  /** `count` images of `size`x`size`x3 uint8, HWC, in the weights' channel order. */
  pixels: Uint8Array
  labels: Int32Array
  count: number
  size: number
}

export interface DecodeItem {
  path: string
  label: number
}

/** An image that could not be decoded; the message names the file. */
export class ImageDecodeError extends Error {
  override readonly name = 'ImageDecodeError'
  constructor(
    readonly path: string,
    readonly reason: string
  ) {
    super(`cannot decode training image ${path}: ${reason}`)
  }
}

/**
 * Decodes every item at `size`x`size` (sharp, a few at a time) into one uint8 buffer. The
 * first image that fails stops it with an ImageDecodeError naming the file.
 */
export async function decodeImageSet(
  items: readonly DecodeItem[],
  size: number,
  channelOrder: 'RGB' | 'BGR',
  onProgress?: (done: number, total: number) => void,
  concurrency = 4
): Promise<ImageSet> {
  const perImage = size * size * 3
  const pixels = new Uint8Array(items.length * perImage)
  const labels = Int32Array.from(items.map((item) => item.label))
  let next = 0
  let done = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      const item = items[i]
      const bytes = await loadStoredImage(item.path)
      if (!Buffer.isBuffer(bytes)) throw new ImageDecodeError(item.path, bytes.reason)
      const decoded = await decodeForModel(bytes, size, { channelOrder: channelOrder === 'BGR' ? 'bgr' : 'rgb' })
      if (!decoded.ok) throw new ImageDecodeError(item.path, decoded.reason)
      pixels.set(decoded.data, i * perImage)
      done++
      onProgress?.(done, items.length)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker))
  return { pixels, labels, count: items.length, size }
}

/** The images at `indices` as a float32 [b, size, size, 3] tensor of 0..255 values. */
export function batchPixels(set: ImageSet, indices: ArrayLike<number>): tf.Tensor4D {
  const perImage = set.size * set.size * 3
  const out = new Float32Array(indices.length * perImage)
  for (let b = 0; b < indices.length; b++) {
    const start = indices[b] * perImage
    const src = set.pixels.subarray(start, start + perImage)
    const base = b * perImage
    for (let i = 0; i < perImage; i++) out[base + i] = src[i]
  }
  return tf.tensor4d(out, [indices.length, set.size, set.size, 3], 'float32')
}

export function batchLabels(set: ImageSet, indices: ArrayLike<number>): Int32Array {
  return Int32Array.from({ length: indices.length }, (_, b) => set.labels[indices[b]])
}

/**
 * Pixels (0..255, already in the weights' channel order) to what the weights expect:
 * torchvision `(x * scale - mean) / std` per channel; caffe `x - mean` (BGR means).
 */
export function normalizePixels(x: tf.Tensor4D, preprocessing: Preprocessing): tf.Tensor4D {
  return tf.tidy(() => {
    if (preprocessing.kind === 'caffe') return tf.sub(x, tf.tensor1d(preprocessing.mean)) as tf.Tensor4D
    const { scale, mean, std } = preprocessing
    const mul = tf.tensor1d(std.map((s) => scale / s))
    const sub = tf.tensor1d(mean.map((m, c) => m / std[c]))
    return tf.sub(tf.mul(x, mul), sub) as tf.Tensor4D
  })
}

/** Consecutive batches of an order: [0, b), [b, 2b), ... the last one possibly smaller. */
export function batchSlices(order: Int32Array, batchSize: number): Int32Array[] {
  const batches: Int32Array[] = []
  for (let start = 0; start < order.length; start += batchSize) batches.push(order.subarray(start, Math.min(order.length, start + batchSize)))
  return batches
}
