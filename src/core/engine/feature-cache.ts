/**
 * The frozen prefix of a model and its feature cache.
 *
 * The prefix is the run of layers from the input up to, not including, the first layer that
 * trains or the first dropout (random at every step). Nothing in it changes during a run, so:
 *
 * - every step runs it outside the gradient tape (its activations are freed at once instead of
 *   being kept for a backward pass that would not use them: what lets "last block + head" at
 *   224 fit the 4 GiB wasm heap), and
 * - when the input of the prefix is the same every epoch, the trainer computes the prefix's
 *   output once per image before the first epoch and trains only the rest of the network on
 *   it. Augmentation would change that input: random flips are handled by caching both
 *   orientations of every image; crops, rotations, brightness and contrast draw a new value
 *   every epoch, so they turn the cache off (the prefix still runs off the tape).
 *
 * The cached features live in JS memory (Float32Array, outside the wasm heap), within a budget.
 */
import * as tf from '@tensorflow/tfjs'
import type { Preprocessing } from '../weights/vgg-weights'
import { augmentBatch, batchFlips } from './augment'
import { batchPixels, batchSlices, normalizePixels, type ImageSet } from './data-loader'
import { applyLayersForTraining } from './relu-conv'
import type { AugmentationSpec } from './trainer-spec'

export interface ModelSplit {
  /** The last layer of the frozen prefix, or null when the first layer trains. */
  boundary: string | null
  /** Layers of the frozen prefix, in order (the input layer excluded). */
  prefix: tf.layers.Layer[]
  /** The layers after it, in order: what the optimizer trains (and any frozen layers between). */
  rest: tf.layers.Layer[]
}

/**
 * Splits a chain-shaped model (every VGG `buildVgg` makes) at its frozen prefix. `trains` says
 * whether a layer has a variable the optimizer updates.
 */
export function splitAtFrozenPrefix(model: tf.LayersModel, trains: (layer: tf.layers.Layer) => boolean): ModelSplit {
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer')
  let end = 0
  while (end < layers.length && !trains(layers[end]) && layers[end].getClassName() !== 'Dropout') end++
  return { boundary: end === 0 ? null : layers[end - 1].name, prefix: layers.slice(0, end), rest: layers.slice(end) }
}

/** Applies `layers` in order to a concrete tensor (eagerly: no graph nodes are added). */
export function applyLayers(layers: readonly tf.layers.Layer[], x: tf.Tensor, training: boolean): tf.Tensor {
  let y = x
  for (const layer of layers) y = layer.apply(y, { training }) as tf.Tensor
  return y
}

/** Output shape of the prefix for one image (without the batch axis). */
export function prefixOutputShape(model: tf.LayersModel, split: ModelSplit): number[] {
  const layer = split.boundary === null ? model.layers[0] : model.getLayer(split.boundary)
  const shape = layer.outputShape as (number | null)[]
  return shape.slice(1).map((d) => d ?? 1)
}

/** Default ceiling on the cached features of a run (train and validation, every orientation). */
export const FEATURE_CACHE_BUDGET_BYTES = 2 * 1024 ** 3

export interface FeatureCachePlan {
  /** Whether the trainer caches the prefix's output. */
  cached: boolean
  boundary: string | null
  /** Orientations cached per image: 1, or 2 when random flips are on. */
  variants: 1 | 2
  /** Bytes the cache takes (0 when not cached). */
  bytes: number
  /** Why the cache is on or off, for the user. */
  reason: string
}

/** What changes the network's input between epochs, besides flips (which the cache handles). */
function varyingAugmentation(a: AugmentationSpec): string | null {
  if (a.crop > 0) return 'random crop'
  if (a.rotationDegrees > 0) return 'random rotation'
  if (a.brightness > 0) return 'random brightness'
  if (a.contrast > 0) return 'random contrast'
  return null
}

const mb = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(bytes < 1024 ** 2 ? 2 : 0)} MB`

/** Decides whether a run caches its frozen prefix, and says why. */
export function planFeatureCache(options: {
  mode: 'auto' | 'off'
  boundary: string | null
  featureShape: readonly number[]
  images: number
  augmentation: AugmentationSpec
  budgetBytes?: number
}): FeatureCachePlan {
  const { boundary, augmentation } = options
  const variants = augmentation.flip ? 2 : 1
  const off = (reason: string): FeatureCachePlan => ({ cached: false, boundary, variants, bytes: 0, reason })
  if (boundary === null) return off('no feature cache: the first layer trains, so nothing before it is frozen')
  if (options.mode === 'off') return off('no feature cache: turned off for this run')
  const varying = varyingAugmentation(augmentation)
  if (varying !== null) return off(`no feature cache: ${varying} changes the images every epoch (the frozen layers up to ${boundary} still run without gradients)`)
  const perImage = options.featureShape.reduce((a, b) => a * b, 1) * 4
  const bytes = perImage * options.images * variants
  const budget = options.budgetBytes ?? FEATURE_CACHE_BUDGET_BYTES
  if (bytes > budget) return off(`no feature cache: it would take ${mb(bytes)}, more than the ${mb(budget)} allowed`)
  const flips = variants === 2 ? ', both orientations for random flips' : ''
  return { cached: true, boundary, variants, bytes, reason: `feature cache: the frozen layers up to ${boundary} run once per image (${mb(bytes)}${flips})` }
}

/** Cached prefix outputs of one image set: `variants` orientations of `count` images. */
export class FeatureStore {
  private readonly perImage: number
  private readonly data: Float32Array[]

  /** `shared`: in SharedArrayBuffers, for worker replicas to read in place. */
  constructor(
    readonly count: number,
    readonly featureShape: readonly number[],
    readonly variants: 1 | 2,
    shared = false,
    buffers?: readonly SharedArrayBuffer[]
  ) {
    this.perImage = featureShape.reduce((a, b) => a * b, 1)
    const floats = count * this.perImage
    this.data = Array.from({ length: variants }, (_, v) => {
      const given = buffers?.[v]
      if (given !== undefined) return new Float32Array(given)
      return shared ? new Float32Array(new SharedArrayBuffer(floats * 4)) : new Float32Array(floats)
    })
  }

  /** A store over the buffers of a shared one (in another thread). */
  static fromShared(count: number, featureShape: readonly number[], buffers: readonly SharedArrayBuffer[]): FeatureStore {
    return new FeatureStore(count, featureShape, buffers.length === 2 ? 2 : 1, true, buffers)
  }

  /** The shared buffers (for `fromShared`), or null when the store is not shared. */
  sharedBuffers(): SharedArrayBuffer[] | null {
    const buffers = this.data.map((d) => d.buffer)
    return buffers.every((b) => b instanceof SharedArrayBuffer) ? (buffers as SharedArrayBuffer[]) : null
  }

  /** Stores the features of images `first ..` for one orientation. */
  write(variant: number, first: number, features: Float32Array): void {
    this.data[variant].set(features, first * this.perImage)
  }

  /** The features of the images at `indices`; image b in orientation `variantOf(b)` (default 0). */
  batch(indices: ArrayLike<number>, variantOf: (b: number) => number = () => 0): tf.Tensor {
    const out = new Float32Array(indices.length * this.perImage)
    for (let b = 0; b < indices.length; b++) {
      const start = indices[b] * this.perImage
      out.set(this.data[variantOf(b)].subarray(start, start + this.perImage), b * this.perImage)
    }
    return tf.tensor(out, [indices.length, ...this.featureShape], 'float32')
  }
}

/**
 * Runs the prefix over every image of a set (in each orientation the plan asks for) and keeps
 * the outputs. Between chunks it yields to the event loop, reports progress and returns early
 * (an incomplete store) when `shouldStop` says the run is being cancelled.
 */
export async function buildFeatureStore(
  set: ImageSet,
  prefix: readonly tf.layers.Layer[],
  featureShape: readonly number[],
  variants: 1 | 2,
  preprocessing: Preprocessing,
  options: { chunk: number; shared: boolean; onChunk?: (images: number) => void; shouldStop?: () => boolean; yieldToEventLoop: () => Promise<void> }
): Promise<FeatureStore> {
  const store = new FeatureStore(set.count, featureShape, variants, options.shared)
  const order = Int32Array.from({ length: set.count }, (_, i) => i)
  for (let variant = 0; variant < variants; variant++) {
    for (const indices of batchSlices(order, options.chunk)) {
      await options.yieldToEventLoop()
      if (options.shouldStop?.() === true) return store
      const features = tf.tidy(() => {
        const pixels = batchPixels(set, indices)
        const oriented = variant === 1 ? tf.image.flipLeftRight(pixels) : pixels
        return applyLayers(prefix, normalizePixels(oriented, preprocessing), false)
      })
      try {
        store.write(variant, indices[0], features.dataSync() as Float32Array)
      } finally {
        features.dispose()
      }
      options.onChunk?.(indices.length)
    }
  }
  return store
}

/** One image set and, when the run caches features, its store. */
export interface InputSource {
  set: ImageSet
  store: FeatureStore | null
}

/**
 * What the trainable rest of the network is fed for a batch: cached features (in the
 * orientation augmentation picked), or the frozen prefix run outside the gradient tape on the
 * (augmented) pixels. Either way the same values reach the rest of the network.
 */
export class NetworkInputs {
  constructor(
    private readonly split: ModelSplit,
    private readonly preprocessing: Preprocessing,
    private readonly augmentation: AugmentationSpec
  ) {}

  /** A training batch: augmented with `augmentSeed`. Call inside `tf.tidy`, outside the tape. */
  training(source: InputSource, indices: Int32Array, augmentSeed: number): tf.Tensor {
    if (source.store !== null) {
      const flips = batchFlips(indices.length, this.augmentation, augmentSeed)
      return source.store.batch(indices, (b) => (flips[b] ? 1 : 0))
    }
    return tf.tidy(() => this.prefix(augmentBatch(batchPixels(source.set, indices), this.augmentation, augmentSeed)))
  }

  /** A batch as it is, for evaluation. */
  plain(source: InputSource, indices: Int32Array): tf.Tensor {
    if (source.store !== null) return source.store.batch(indices)
    return tf.tidy(() => this.prefix(batchPixels(source.set, indices)))
  }

  /** The logits from what `training` or `plain` returned (inside the tape when training). */
  logits(x: tf.Tensor, training: boolean): tf.Tensor2D {
    if (!training) return applyLayers(this.split.rest, x, false) as tf.Tensor2D
    return applyLayersForTraining(this.split.rest, x) as tf.Tensor2D
  }

  private prefix(pixels: tf.Tensor4D): tf.Tensor {
    return applyLayers(this.split.prefix, normalizePixels(pixels, this.preprocessing), false)
  }
}
