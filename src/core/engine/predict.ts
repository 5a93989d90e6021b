/**
 * Inference with a loaded model: images decoded at the model's input size (an image already at
 * that size is used as is, no resampling), normalized for the weights, run through the model;
 * logits turned into probabilities with a softmax computed in float64.
 */
import * as tf from '@tensorflow/tfjs'
import { decodeForModel } from '../data/decode'
import { loadStoredImage } from '../data/stored-image'
import type { Preprocessing } from '../weights/vgg-weights'
import { normalizePixels } from './data-loader'
import type { LoadedModel } from './load-trained-model'

/** An image that cannot be used; the message names the file and the reason. */
export class ImageReadError extends Error {
  override readonly name = 'ImageReadError'
  constructor(
    readonly path: string,
    readonly reason: string
  ) {
    super(`cannot decode image ${path}: ${reason}`)
  }
}

export interface ClassScore {
  index: number
  label: string
  probability: number
  logit: number
}

export interface PredictionResult {
  /** The `k` most probable classes, most probable first. */
  top: ClassScore[]
}

/**
 * One image (a file path, or an IDX record `<file>#<n>` as datasets store them) as uint8 HWC
 * pixels at `size`x`size`, in the preprocessing's channel order.
 */
export async function readImagePixels(path: string, size: number, preprocessing: Preprocessing): Promise<Uint8Array> {
  const bytes = await loadStoredImage(path)
  if (!Buffer.isBuffer(bytes)) throw new ImageReadError(path, bytes.reason)
  const decoded = await decodeForModel(bytes, size, { channelOrder: preprocessing.channelOrder === 'BGR' ? 'bgr' : 'rgb' })
  if (!decoded.ok) throw new ImageReadError(path, decoded.reason)
  return decoded.data
}

/** Logits of `count` images given as consecutive uint8 HWC pixels, one Float32Array per image. */
export function logitsOfPixels(loaded: LoadedModel, pixels: Uint8Array, count: number): Float32Array[] {
  const size = loaded.config.inputSize
  const perImage = size * size * 3
  if (pixels.length !== count * perImage) throw new Error(`expected ${count} images of ${size}x${size}x3 (${count * perImage} values), got ${pixels.length}`)
  if (count === 0) return []
  const logits = tf.tidy(() => {
    const x = tf.tensor4d(Float32Array.from(pixels), [count, size, size, 3], 'float32')
    return loaded.model.predict(normalizePixels(x, loaded.preprocessing)) as tf.Tensor2D
  })
  try {
    const values = logits.dataSync() as Float32Array
    const k = logits.shape[1]
    return Array.from({ length: count }, (_, i) => values.slice(i * k, (i + 1) * k))
  } finally {
    logits.dispose()
  }
}

/** Softmax in float64 (max subtracted). */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i])
  const out = new Float64Array(logits.length)
  let sum = 0
  for (let i = 0; i < logits.length; i++) {
    out[i] = Math.exp(logits[i] - max)
    sum += out[i]
  }
  for (let i = 0; i < out.length; i++) out[i] /= sum
  return out
}

/** The `k` most probable classes (ties: lower index first). */
export function topClasses(logits: ArrayLike<number>, classNames: readonly string[], k: number): ClassScore[] {
  if (!Number.isInteger(k) || k < 1) throw new Error(`top must be a positive integer, got ${k}`)
  const probabilities = softmax(logits)
  return Array.from(probabilities, (probability, index) => ({ index, label: classNames[index] ?? `class ${index}`, probability, logit: logits[index] }))
    .sort((a, b) => b.probability - a.probability || a.index - b.index)
    .slice(0, Math.min(k, probabilities.length))
}

/** Runs one image through the model. */
export async function predictImage(loaded: LoadedModel, imagePath: string, options: { top?: number } = {}): Promise<PredictionResult> {
  const top = options.top ?? 5
  if (!Number.isInteger(top) || top < 1) throw new Error(`top must be a positive integer, got ${top}`)
  const pixels = await readImagePixels(imagePath, loaded.config.inputSize, loaded.preprocessing)
  const [logits] = logitsOfPixels(loaded, pixels, 1)
  return { top: topClasses(logits, loaded.classNames, top) }
}
