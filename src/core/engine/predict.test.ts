import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import sharp from 'sharp'
import type * as tf from '@tensorflow/tfjs'
import { writeTextAsJpg, type GeneratedImage } from '../../../test/generators/images'
import { randomVggWeights, writeTorchSafetensors } from '../../../test/generators/vgg-weight-files'
import { vggWeightLayerNames } from '../model/vgg'
import { CAFFE_PREPROCESSING, TORCHVISION_PREPROCESSING } from '../weights/vgg-weights'
import { InputSizeError, checkInputSize, loadModelFromPath, type LoadedModel } from './load-trained-model'
import { ImageReadError, logitsOfPixels, predictImage, readImagePixels, softmax, topClasses } from './predict'
import { trainSmallModel } from './trainer-fixture'

const CLASSES = ['disc', 'square']
const TRAINED_WN = ['block5_conv2', 'fc1', 'fc2', 'predictions']

let root: string
let images: GeneratedImage[]
let checkpoint: string
let trained: tf.LayersModel

/** Largest absolute difference relative to the largest magnitude of the reference. */
function relativeError(actual: Float32Array[], expected: Float32Array[]): number {
  let diff = 0
  let scale = 0
  expected.forEach((e, i) =>
    e.forEach((v, j) => {
      diff = Math.max(diff, Math.abs(actual[i][j] - v))
      scale = Math.max(scale, Math.abs(v))
    })
  )
  return diff / scale
}

async function pixelsOf(loaded: LoadedModel): Promise<Uint8Array> {
  const size = loaded.config.inputSize * loaded.config.inputSize * 3
  const out = new Uint8Array(images.length * size)
  for (const [i, image] of images.entries()) out.set(await readImagePixels(image.path, loaded.config.inputSize, loaded.preprocessing), i * size)
  return out
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-predict-'))
  const run = await trainSmallModel(root, { runId: 'predict-test', classes: CLASSES, perClass: 6, trained: TRAINED_WN, dropout: 0, learningRate: 0.001, batchSize: 6, seed: 7 })
  images = run.images
  const result = run.result
  checkpoint = result.finalCheckpoint as string
  trained = result.model
}, 60_000)

afterAll(() => {
  trained?.dispose()
  fs.rmSync(root, { recursive: true, force: true })
})

describe('loading a trained model', () => {
  it('rebuilds the exact model from a checkpoint: same WN layers, variables assigned by name, same outputs', async () => {
    const loaded = await loadModelFromPath(checkpoint)
    try {
      expect(loaded.weightNorm).toEqual(TRAINED_WN)
      expect(loaded.classNames).toEqual(CLASSES)
      expect(loaded.config).toMatchObject({ depth: 11, inputSize: 32, numClasses: 2, fcWidth: 16 })
      const pixels = await pixelsOf(loaded)
      const reference = logitsOfPixels({ ...loaded, model: trained }, pixels, images.length)
      expect(logitsOfPixels(loaded, pixels, images.length)).toEqual(reference)
    } finally {
      loaded.model.dispose()
    }
  })

  it('--weight-norm none and all give the same logits as the model as trained (within 1e-4 relative)', async () => {
    const asTrained = await loadModelFromPath(checkpoint)
    const none = await loadModelFromPath(checkpoint, { weightNorm: 'none' })
    const all = await loadModelFromPath(checkpoint, { weightNorm: 'all' })
    try {
      expect(none.weightNorm).toEqual([])
      expect(all.weightNorm).toEqual(vggWeightLayerNames(11))
      expect(all.model.layers.filter((l) => l.getClassName().startsWith('WeightNorm')).length).toBe(11)
      const pixels = await pixelsOf(asTrained)
      const reference = logitsOfPixels(asTrained, pixels, images.length)
      expect(relativeError(logitsOfPixels(none, pixels, images.length), reference)).toBeLessThan(1e-4)
      expect(relativeError(logitsOfPixels(all, pixels, images.length), reference)).toBeLessThan(1e-4)
      // And not trivially: the logits differ from image to image.
      expect(new Set(reference.map((l) => l[0].toFixed(6))).size).toBeGreaterThan(1)
    } finally {
      for (const m of [asTrained, none, all]) m.model.dispose()
    }
  })

  it('names a missing or mis-shaped variable', async () => {
    const broken = path.join(root, 'broken')
    fs.cpSync(checkpoint, broken, { recursive: true })
    const manifestPath = path.join(broken, 'manifest.json')
    const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'))
    manifest.tensors = manifest.tensors.filter((t: { name: string }) => t.name !== 'model/fc2/g')
    fs.writeFileSync(manifestPath, JSON.stringify(manifest))
    await expect(loadModelFromPath(broken)).rejects.toThrow(/has no fc2\/g, which the model needs/)
    manifest.state.model.fcWidth = 8
    fs.writeFileSync(manifestPath, JSON.stringify(manifest))
    await expect(loadModelFromPath(broken)).rejects.toThrow(/fc1\/\w+ has shape \[512, 16\], the model needs \[512, 8\]/)
  })
})

describe('predict', () => {
  it('lists the top classes by probability, with labels, probabilities and logits', async () => {
    const loaded = await loadModelFromPath(checkpoint)
    try {
      const result = await predictImage(loaded, images[0].path, { top: 5 })
      expect(result.top).toHaveLength(2)
      expect(result.top.map((t) => t.label).sort()).toEqual(CLASSES)
      for (const t of result.top) expect(t.label).toBe(CLASSES[t.index])
      expect(result.top[0].probability).toBeGreaterThanOrEqual(result.top[1].probability)
      expect(result.top[0].probability + result.top[1].probability).toBeCloseTo(1, 12)
      const p = softmax(result.top.sort((a, b) => a.index - b.index).map((t) => t.logit))
      expect(result.top.map((t) => t.probability)).toEqual(Array.from(p))
      expect((await predictImage(loaded, images[0].path, { top: 1 })).top).toHaveLength(1)
    } finally {
      loaded.model.dispose()
    }
  })

  it('topClasses sorts by probability and labels by index', () => {
    const top = topClasses([0.5, 3, -1, 3], ['a', 'b', 'c', 'd'], 3)
    expect(top.map((t) => t.label)).toEqual(['b', 'd', 'a'])
    expect(top[0].probability).toBeCloseTo(Math.exp(3) / (Math.exp(0.5) + 2 * Math.exp(3) + Math.exp(-1)), 12)
  })

  it('uses an image already at the input size as is, in the weights\' channel order', async () => {
    const size = 32
    const raw = Buffer.alloc(size * size * 3)
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 37 + (i >> 5)) % 256
    const file = path.join(root, 'exact.png')
    await sharp(raw, { raw: { width: size, height: size, channels: 3 } }).png().toFile(file)
    expect(Buffer.from(await readImagePixels(file, size, TORCHVISION_PREPROCESSING))).toEqual(raw)
    const bgr = await readImagePixels(file, size, CAFFE_PREPROCESSING)
    expect([bgr[0], bgr[1], bgr[2]]).toEqual([raw[2], raw[1], raw[0]])
    // A larger image is resized to the input size.
    expect(await readImagePixels(images[0].path, 64, TORCHVISION_PREPROCESSING)).toHaveLength(64 * 64 * 3)
  })

  it('names an image that fails to decode, and why', async () => {
    const loaded = await loadModelFromPath(checkpoint)
    try {
      const bad = await writeTextAsJpg(path.join(root, 'not-a-photo.jpg'))
      const error = await predictImage(loaded, bad).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(ImageReadError)
      expect((error as Error).message).toBe(`cannot decode image ${bad}: not an image (unsupported or unknown format)`)
      await expect(predictImage(loaded, path.join(root, 'missing.png'))).rejects.toThrow(`cannot decode image ${path.join(root, 'missing.png')}: file not found`)
    } finally {
      loaded.model.dispose()
    }
  })

  it('refuses an input size that is not a multiple of 32, or that the model does not take', async () => {
    expect(() => checkInputSize(100)).toThrow(InputSizeError)
    expect(() => checkInputSize(100)).toThrow(/input size 100: must be a multiple of 32/)
    await expect(loadModelFromPath(checkpoint, { inputSize: 100 })).rejects.toThrow(/multiple of 32/)
    await expect(loadModelFromPath(checkpoint, { inputSize: 64 })).rejects.toThrow(/input size 64: .*takes 32x32 images/)
  })

  it('refuses pretrained weights without a head (notop)', async () => {
    const file = path.join(root, 'vgg11-notop.safetensors')
    await writeTorchSafetensors(file, randomVggWeights({ depth: 11, top: 'notop' }), { flavor: 'torchvision', depth: 11 })
    await expect(loadModelFromPath(file)).rejects.toThrow(/vgg11-notop\.safetensors has no classifier head \(notop weights/)
  })
})
