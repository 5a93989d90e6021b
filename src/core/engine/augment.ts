/**
 * Training-time augmentation of batched NHWC float32 images in pixel units (0..255, before the
 * weights' normalization). Every function draws its per-image parameters from a seeded JS PRNG,
 * so the same seed gives the same augmentation on every backend; the tf ops that apply them are
 * deterministic on cpu and wasm. Each returns a new tensor (call them inside `tf.tidy`) or, when
 * its amount is 0, the input itself.
 */
import * as tf from '@tensorflow/tfjs'
import { deriveSeed } from './data-loader'
import { seededRandom } from '../seeded-random'
import type { AugmentationSpec } from './trainer-spec'

export const AUGMENTATION_OFF: AugmentationSpec = { flip: false, crop: 0, rotationDegrees: 0, brightness: 0, contrast: 0 }

export function augmentationEnabled(spec: AugmentationSpec): boolean {
  return spec.flip || spec.crop > 0 || spec.rotationDegrees > 0 || spec.brightness > 0 || spec.contrast > 0
}

function draws(n: number, seed: number): number[] {
  const random = seededRandom(seed)
  return Array.from({ length: n }, () => random())
}

function flipDecisions(n: number, seed: number, p = 0.5): boolean[] {
  return draws(n, seed).map((u) => u < p)
}

/** Mirrors each image left-right with probability 1/2 (`p` to change that). */
export function randomFlip(images: tf.Tensor4D, seed: number, p = 0.5): tf.Tensor4D {
  if (p <= 0) return images
  return tf.tidy(() => {
    const n = images.shape[0]
    const mask = tf.reshape(tf.tensor1d(flipDecisions(n, seed, p).map((f) => (f ? 1 : 0)), 'bool'), [n, 1, 1, 1])
    return tf.where(tf.broadcastTo(mask, images.shape), tf.image.flipLeftRight(images), images) as tf.Tensor4D
  })
}

/**
 * Per-image projective transforms in tf.image.transform's convention: the output pixel (x, y)
 * samples the input at ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1.
 */
type Transform = [number, number, number, number, number, number, number, number]

function applyTransforms(images: tf.Tensor4D, transforms: Transform[], interpolation: 'nearest' | 'bilinear', fillMode: 'constant' | 'nearest'): tf.Tensor4D {
  return tf.tidy(() => {
    if (tf.getBackend() !== 'cpu') return tf.image.transform(images, tf.tensor2d(transforms, [transforms.length, 8]), interpolation, fillMode, 0)
    // tfjs 4.22's cpu Transform kernel gets every image after the first wrong (zeros), so on
    // cpu each image goes alone. (wasm's is right, and slicing there is slow.)
    const one = tf.unstack(images).map((image, i) =>
      tf.image.transform(tf.expandDims(image, 0) as tf.Tensor4D, tf.tensor2d([transforms[i]], [1, 8]), interpolation, fillMode, 0)
    )
    return tf.concat(one, 0)
  })
}

/**
 * Pads each image by `pad` zero pixels on every side and crops the original size back at a
 * random offset (torchvision's `RandomCrop(size, padding=pad)`): the content shifts by whole
 * pixels, dx and dy each uniform in [-pad, pad], and the uncovered border is 0.
 */
export function randomPadCrop(images: tf.Tensor4D, pad: number, seed: number): tf.Tensor4D {
  if (pad <= 0) return images
  const random = seededRandom(seed)
  const offset = () => Math.floor(random() * (2 * pad + 1)) - pad
  const transforms = Array.from({ length: images.shape[0] }, (): Transform => {
    const dx = offset()
    const dy = offset()
    return [1, 0, dx, 0, 1, dy, 0, 0]
  })
  return tf.tidy(() => applyTransforms(images, transforms, 'nearest', 'constant'))
}

/**
 * Rotates each image about its centre by an angle uniform in [-maxDegrees, maxDegrees]
 * (bilinear; pixels brought in from outside repeat the nearest edge, so no black corners).
 */
export function randomRotation(images: tf.Tensor4D, maxDegrees: number, seed: number): tf.Tensor4D {
  if (maxDegrees <= 0) return images
  const [, h, w] = images.shape
  const cx = (w - 1) / 2
  const cy = (h - 1) / 2
  const transforms = draws(images.shape[0], seed).map((u): Transform => {
    const angle = ((2 * u - 1) * maxDegrees * Math.PI) / 180
    const cos = Math.cos(angle)
    const sin = Math.sin(angle)
    // Inverse map: input = R(-angle) (output - centre) + centre.
    return [cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy, 0, 0]
  })
  return tf.tidy(() => applyTransforms(images, transforms, 'bilinear', 'nearest'))
}

/** Multiplies each image by a factor uniform in [1 - amount, 1 + amount], clipped to 0..255. */
export function randomBrightness(images: tf.Tensor4D, amount: number, seed: number): tf.Tensor4D {
  if (amount <= 0) return images
  const factors = draws(images.shape[0], seed).map((u) => 1 + (2 * u - 1) * amount)
  return tf.tidy(() => tf.clipByValue(tf.mul(images, tf.tensor4d(factors, [factors.length, 1, 1, 1])), 0, 255) as tf.Tensor4D)
}

/**
 * Scales each image's deviation from its own mean (over all pixels and channels) by a factor
 * uniform in [1 - amount, 1 + amount], clipped to 0..255: the mean stays, the spread changes.
 */
export function randomContrast(images: tf.Tensor4D, amount: number, seed: number): tf.Tensor4D {
  if (amount <= 0) return images
  const factors = draws(images.shape[0], seed).map((u) => 1 + (2 * u - 1) * amount)
  return tf.tidy(() => {
    const mean = tf.mean(images, [1, 2, 3], true)
    const f = tf.tensor4d(factors, [factors.length, 1, 1, 1])
    return tf.clipByValue(tf.add(tf.mul(tf.sub(images, mean), f), mean), 0, 255) as tf.Tensor4D
  })
}

/** Which images of a batch of `n` `augmentBatch(images, spec, seed)` mirrors (the feature cache picks orientations by it). */
export function batchFlips(n: number, spec: AugmentationSpec, seed: number): boolean[] {
  return spec.flip ? flipDecisions(n, deriveSeed(seed, 1)) : Array.from({ length: n }, () => false)
}

/**
 * Applies every augmentation the spec turns on, in the order flip, pad-and-crop, rotation,
 * brightness, contrast, each with its own seed derived from `seed`.
 */
export function augmentBatch(images: tf.Tensor4D, spec: AugmentationSpec, seed: number): tf.Tensor4D {
  if (!augmentationEnabled(spec)) return images
  return tf.tidy(() => {
    let x = images
    if (spec.flip) x = randomFlip(x, deriveSeed(seed, 1))
    x = randomPadCrop(x, spec.crop, deriveSeed(seed, 2))
    x = randomRotation(x, spec.rotationDegrees, deriveSeed(seed, 3))
    x = randomBrightness(x, spec.brightness, deriveSeed(seed, 4))
    x = randomContrast(x, spec.contrast, deriveSeed(seed, 5))
    return x
  })
}
