import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as tf from '@tensorflow/tfjs'
import type { GeneratedImage } from '../../../test/generators/images'
import { foldWeightNormValues } from '../model/fold'
import { readSafetensors } from '../weights/safetensors'
import { loadCheckpoint } from './checkpoint'
import { exportSafetensorsModel, exportTfjsModel } from './export-model'
import { EXPORT_FORMAT, loadModelFromPath, type LoadedModel } from './load-trained-model'
import { logitsOfPixels, readImagePixels } from './predict'
import { trainSmallModel } from './trainer-fixture'

const CLASSES = ['disc', 'square']
const TRAINED_WN = ['block4_conv2', 'block5_conv1', 'block5_conv2', 'fc1', 'fc2', 'predictions']

let root: string
let images: GeneratedImage[]
let checkpoint: string
/** The model as trained (WN layers), loaded from its checkpoint. */
let trained: LoadedModel
let pixels: Uint8Array
let reference: Float32Array[]

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

/** Reads an exported folder the way `tf.loadLayersModel` reads one over HTTP: model.json, then its shards. */
function folderHandler(dir: string): tf.io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON
      const group = json.weightsManifest[0]
      const data = Buffer.concat(group.paths.map((p) => fs.readFileSync(path.join(dir, p))))
      return {
        modelTopology: json.modelTopology,
        weightSpecs: group.weights,
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
        format: json.format,
        userDefinedMetadata: json.userDefinedMetadata
      }
    }
  }
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-export-'))
  const run = await trainSmallModel(root, { runId: '42', classes: CLASSES, perClass: 6, trained: TRAINED_WN, dropout: 0.25, learningRate: 0.003, batchSize: 4, seed: 3 })
  images = run.images
  const result = run.result
  checkpoint = result.finalCheckpoint as string
  trained = await loadModelFromPath(checkpoint)
  const size = 32 * 32 * 3
  pixels = new Uint8Array(images.length * size)
  for (const [i, image] of images.entries()) pixels.set(await readImagePixels(image.path, 32, trained.preprocessing), i * size)
  // The model train() returned and the one rebuilt from its checkpoint compute the same thing.
  reference = logitsOfPixels({ ...trained, model: result.model }, pixels, images.length)
  expect(logitsOfPixels(trained, pixels, images.length)).toEqual(reference)
  result.model.dispose()
}, 60_000)

afterAll(() => {
  trained?.model.dispose()
  fs.rmSync(root, { recursive: true, force: true })
})

describe('export --format tfjs', () => {
  it('writes a plain TF.js layers model (no WN) with metadata, that tf.loadLayersModel and our loader read back with the same outputs', async () => {
    const dir = path.join(root, 'tfjs')
    const result = await exportTfjsModel(trained, dir, { shardBytes: 1 << 20 })
    expect(result.files[0]).toBe('model.json')
    expect(result.files.length).toBeGreaterThan(2) // ~9.2M parameters in 1 MiB shards
    for (const f of result.files) expect(fs.existsSync(path.join(dir, f))).toBe(true)

    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'))
    expect(json.format).toBe('layers-model')
    const topology = JSON.stringify(json.modelTopology)
    expect(topology).not.toMatch(/WeightNorm/)
    const classNames = json.modelTopology.config.layers.map((l: { class_name: string }) => l.class_name)
    expect(classNames.filter((c: string) => c === 'Conv2D')).toHaveLength(8)
    expect(classNames.filter((c: string) => c === 'Dense')).toHaveLength(3)
    expect(json.weightsManifest[0].weights.map((w: { name: string }) => w.name)).not.toContain('fc1/v')
    expect(json.userDefinedMetadata).toMatchObject({
      format: EXPORT_FORMAT,
      classNames: CLASSES,
      preprocessing: trained.preprocessing,
      inputSize: 32,
      sourceRunId: null,
      depth: 11,
      fcWidth: 16
    })

    const viaTf = await tf.loadLayersModel(folderHandler(dir))
    try {
      expect(viaTf.layers.some((l) => l.getClassName().startsWith('WeightNorm'))).toBe(false)
      const viaTfLoaded: LoadedModel = { ...trained, model: viaTf }
      expect(relativeError(logitsOfPixels(viaTfLoaded, pixels, images.length), reference)).toBeLessThan(1e-4)
    } finally {
      viaTf.dispose()
    }

    const back = await loadModelFromPath(dir)
    try {
      expect(back.source.kind).toBe('tfjs-export')
      expect(back.weightNorm).toEqual([])
      expect(back.classNames).toEqual(CLASSES)
      expect(back.config).toEqual(trained.config)
      expect(relativeError(logitsOfPixels(back, pixels, images.length), reference)).toBeLessThan(1e-4)
    } finally {
      back.model.dispose()
    }
    // The folder can be read back with --weight-norm all too (converted exactly).
    const allWn = await loadModelFromPath(path.join(dir, 'model.json'), { weightNorm: 'all' })
    try {
      expect(allWn.weightNorm).toHaveLength(11)
      expect(relativeError(logitsOfPixels(allWn, pixels, images.length), reference)).toBeLessThan(1e-4)
    } finally {
      allWn.model.dispose()
    }
  })

  it('refuses to write into a folder that is not empty', async () => {
    const dir = path.join(root, 'busy')
    fs.mkdirSync(dir)
    fs.writeFileSync(path.join(dir, 'keep.txt'), 'x')
    await expect(exportTfjsModel(trained, dir)).rejects.toThrow(/is not empty/)
    await expect(exportSafetensorsModel(trained, dir)).rejects.toThrow(/is not empty/)
  })
})

describe('export --format safetensors', () => {
  it('writes canonical Keras-named tensors with WN folded and metadata, which predict reads back with the same outputs', async () => {
    const dir = path.join(root, 'safetensors')
    const result = await exportSafetensorsModel(trained, dir, { sourceRunId: 42 })
    const file = path.join(dir, 'model.safetensors')
    expect(result.files).toEqual(['model.safetensors'])
    const { tensors, metadata } = await readSafetensors(file)
    expect([...tensors.keys()].filter((k) => k.endsWith('/kernel'))).toHaveLength(11)
    expect([...tensors.keys()].every((k) => /\/(kernel|bias)$/.test(k))).toBe(true)
    expect(tensors.get('block1_conv1/kernel')?.shape).toEqual([3, 3, 3, 64])
    expect(tensors.get('block5_conv2/kernel')?.shape).toEqual([3, 3, 512, 512])
    expect(tensors.get('fc1/kernel')?.shape).toEqual([512, 16])
    expect(tensors.get('predictions/kernel')?.shape).toEqual([16, 2])
    expect(metadata).toMatchObject({ format: EXPORT_FORMAT, input_size: '32', fc_width: '16', depth: '11', num_classes: '2', source_run_id: '42' })
    expect(JSON.parse(metadata?.class_names ?? 'null')).toEqual(CLASSES)
    expect(JSON.parse(metadata?.preprocessing ?? 'null')).toEqual(trained.preprocessing)

    // Folded values: a plain layer's kernel is the checkpoint's; a WN layer's is g v/||v||.
    const ckpt = await loadCheckpoint(checkpoint)
    expect(tensors.get('block1_conv1/kernel')?.data).toEqual(ckpt.tensors.get('model/block1_conv1/kernel')?.data)
    const v = ckpt.tensors.get('model/fc1/v')
    const g = ckpt.tensors.get('model/fc1/g')
    if (!v || !g) throw new Error('checkpoint lacks fc1 v/g')
    const folded = foldWeightNormValues(v.data, v.shape, g.data, null).kernel
    const exported = tensors.get('fc1/kernel')?.data as Float32Array
    const worst = folded.reduce((m, x, i) => Math.max(m, Math.abs(x - exported[i])), 0)
    expect(worst).toBeLessThan(1e-6 * Math.max(...folded.map(Math.abs)))

    const back = await loadModelFromPath(file)
    try {
      expect(back.source).toMatchObject({ kind: 'safetensors-export', runId: 42 })
      expect(back.weightNorm).toEqual([])
      expect(back.classNames).toEqual(CLASSES)
      expect(back.config).toEqual(trained.config)
      expect(relativeError(logitsOfPixels(back, pixels, images.length), reference)).toBeLessThan(1e-4)
    } finally {
      back.model.dispose()
    }
  })
})
