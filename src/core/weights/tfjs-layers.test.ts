import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { floatsDiffer, makeTempDir, randomVggWeights, vggWeightsDiffer, writeTfjsFolder } from '../../../test/generators/vgg-weight-files'
import { loadVggWeights } from './load-weights'
import { decodeTfjsWeights, parsePreprocessing, readTfjsLayersModel, tfjsLogicalName, type TfjsManifestEntry } from './tfjs-layers'
import { CAFFE_PREPROCESSING, TORCHVISION_PREPROCESSING, type VggWeights } from './vgg-weights'
import { vggSpec } from './vgg-spec'

let dir: string
beforeAll(async () => {
  dir = await makeTempDir('tfjs-layers-')
  await tf.setBackend('cpu')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('tfjsLogicalName', () => {
  it('reduces tfjs and Keras weight names to layer/kernel|bias', () => {
    expect(tfjsLogicalName('block1_conv1/kernel')).toBe('block1_conv1/kernel')
    expect(tfjsLogicalName('vgg16/block5_conv3/bias')).toBe('block5_conv3/bias')
    expect(tfjsLogicalName('fc1/kernel_1')).toBe('fc1/kernel')
    expect(tfjsLogicalName('predictions/bias:0')).toBe('predictions/bias')
    expect(tfjsLogicalName('bn/gamma')).toBe('bn/gamma')
  })
})

describe('decodeTfjsWeights', () => {
  it('decodes float32, int32 and uint8/uint16/float16-quantized weights exactly as tfjs does', () => {
    const specs: TfjsManifestEntry[] = [
      { name: 'f', shape: [3], dtype: 'float32' },
      { name: 'q8', shape: [2, 2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.02, min: -1.3 } },
      { name: 'q16', shape: [3], dtype: 'float32', quantization: { dtype: 'uint16', scale: 1e-4, min: -3 } },
      { name: 'h', shape: [2], dtype: 'float32', quantization: { dtype: 'float16' } },
      { name: 'i', shape: [2], dtype: 'int32' }
    ]
    const parts = [
      new Uint8Array(Float32Array.from([1.5, -2, 1e-20]).buffer),
      Uint8Array.from([0, 7, 200, 255]),
      new Uint8Array(Uint16Array.from([0, 12345, 65535]).buffer),
      new Uint8Array(Uint16Array.from([0x3c00, 0xb555]).buffer),
      new Uint8Array(Int32Array.from([-5, 9]).buffer)
    ]
    const bytes = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0))
    parts.reduce((at, p) => (bytes.set(p, at), at + p.byteLength), 0)
    const mine = decodeTfjsWeights('model.json', bytes, specs)
    const theirs = tf.io.decodeWeights(bytes.slice().buffer, specs)
    for (const s of specs) {
      const expected = Float32Array.from(theirs[s.name].dataSync())
      expect(floatsDiffer(mine.get(s.name) as Float32Array, expected), s.name).toBeUndefined()
    }
    tf.dispose(Object.values(theirs))
    expect(() => decodeTfjsWeights('model.json', bytes.subarray(0, bytes.length - 1), specs)).toThrow(
      /model\.json: weight shards are truncated: tensor i needs bytes 26\.\.34, the shards hold 33/
    )
  })
})

describe('parsePreprocessing', () => {
  it('accepts both kinds and rejects malformed descriptions', () => {
    expect(parsePreprocessing('m.json', TORCHVISION_PREPROCESSING)).toEqual(TORCHVISION_PREPROCESSING)
    expect(parsePreprocessing('m.json', CAFFE_PREPROCESSING)).toEqual(CAFFE_PREPROCESSING)
    expect(parsePreprocessing('m.json', undefined)).toBeUndefined()
    expect(() => parsePreprocessing('m.json', { kind: 'caffe', channelOrder: 'RGB', mean: [1, 2, 3] })).toThrow(/m\.json: userDefinedMetadata\.preprocessing is not a valid/)
    expect(() => parsePreprocessing('m.json', { kind: 'torchvision', channelOrder: 'RGB', scale: 1, mean: [0, 0], std: [1, 1, 1] })).toThrow(/not a valid/)
  })
})

/** A real tfjs VGG (layers named as Keras does), so the names are tfjs's own. */
function tfjsVgg(weights: VggWeights, depth: 11 | 16, widthDivisor: number): tf.Sequential {
  const spec = vggSpec({ depth, widthDivisor })
  const model = tf.sequential()
  for (const c of spec.convs) {
    model.add(tf.layers.conv2d({
      name: c.name, filters: c.outChannels, kernelSize: 3, padding: 'same', activation: 'relu',
      ...(c.block === 1 && c.indexInBlock === 1 ? { inputShape: [224, 224, 3] } : {})
    }))
    const next = spec.convs[spec.convs.indexOf(c) + 1]
    if (!next || next.block !== c.block) model.add(tf.layers.maxPooling2d({ name: `block${c.block}_pool`, poolSize: 2, strides: 2 }))
  }
  model.add(tf.layers.flatten({ name: 'flatten' }))
  model.add(tf.layers.dense({ name: 'fc1', units: spec.fcUnits, activation: 'relu' }))
  model.add(tf.layers.dense({ name: 'fc2', units: spec.fcUnits, activation: 'relu' }))
  model.add(tf.layers.dense({ name: 'predictions', units: weights.get('predictions')?.bias.length ?? 0, activation: 'softmax' }))
  const values = [...weights.values()].flatMap((w) => [tf.tensor(w.kernel, w.kernelShape), tf.tensor(w.bias)])
  model.setWeights(values)
  tf.dispose(values)
  return model
}

async function saveModel(model: tf.LayersModel, to: string): Promise<void> {
  await mkdir(to, { recursive: true })
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const data = artifacts.weightData
    const buffer = Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data
    await writeFile(join(to, 'weights.bin'), new Uint8Array(buffer as ArrayBuffer))
    await writeFile(join(to, 'model.json'), JSON.stringify({
      modelTopology: artifacts.modelTopology,
      format: artifacts.format,
      userDefinedMetadata: artifacts.userDefinedMetadata,
      weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }]
    }))
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }
  }))
}

describe('TF.js layers-model folders', () => {
  it('loads a VGG16 saved by tfjs itself, with its preprocessing metadata', async () => {
    const weights = randomVggWeights({ depth: 16, widthDivisor: 16, numClasses: 5, seed: 21 })
    const model = tfjsVgg(weights, 16, 16)
    // tfjs: the flatten of the NHWC 7x7xC map is HWC, as the canonical fc1 assumes.
    expect(model.getLayer('flatten').outputShape).toEqual([null, 7 * 7 * 32])
    model.setUserDefinedMetadata({ preprocessing: TORCHVISION_PREPROCESSING })
    await saveModel(model, join(dir, 'real'))
    model.dispose()
    const loaded = await loadVggWeights(join(dir, 'real'), { depth: 16, widthDivisor: 16 })
    expect(loaded).toMatchObject({ source: 'tfjs', format: 'tfjs-layers', hasTop: true, numClasses: 5, warnings: [] })
    expect(loaded.preprocessing).toEqual(TORCHVISION_PREPROCESSING)
    expect(vggWeightsDiffer(loaded.weights, weights)).toBeUndefined()
  })

  it('reads sharded, name-prefixed folders and model.json paths; skips optimizer weights', async () => {
    const weights = randomVggWeights({ depth: 11, widthDivisor: 16, seed: 22, top: 'notop' })
    const folder = join(dir, 'sharded')
    await writeTfjsFolder(folder, weights, { shardBytes: 10_000, namePrefix: 'vgg11/' })
    const { readFile } = await import('node:fs/promises')
    const json = JSON.parse(await readFile(join(folder, 'model.json'), 'utf8'))
    json.weightsManifest.push({ paths: ['optimizer.bin'], weights: [{ name: 'Adam/iter', shape: [], dtype: 'float32', group: 'optimizer' }] })
    await writeFile(join(folder, 'model.json'), JSON.stringify(json))
    await writeFile(join(folder, 'optimizer.bin'), new Uint8Array(4))
    expect(json.weightsManifest[0].paths.length).toBeGreaterThan(3)
    const model = await readTfjsLayersModel(join(folder, 'model.json'))
    expect(model.tensors.get('block4_conv2/kernel')?.name).toBe('vgg11/block4_conv2/kernel')
    expect(model.tensors.has('Adam/iter')).toBe(false)
    const loaded = await loadVggWeights(folder, { widthDivisor: 16 })
    expect(loaded).toMatchObject({ depth: 11, hasTop: false, numClasses: undefined })
    expect(loaded.preprocessing).toEqual(CAFFE_PREPROCESSING)
    expect(loaded.warnings[0]).toMatch(/model\.json has no userDefinedMetadata\.preprocessing; assuming Keras \(caffe\) preprocessing/)
    expect(vggWeightsDiffer(loaded.weights, weights)).toBeUndefined()
  })

  it('rejects truncated or missing shards and shard paths outside the folder', async () => {
    const weights = randomVggWeights({ depth: 11, widthDivisor: 16, seed: 23, top: 'notop' })
    const folder = join(dir, 'broken')
    await writeTfjsFolder(folder, weights, { shardBytes: 1_000_000 })
    const shard = join(folder, 'group1-shard1of1.bin')
    const { readFile } = await import('node:fs/promises')
    const bytes = await readFile(shard)
    await writeFile(shard, bytes.subarray(0, bytes.length - 8))
    await expect(loadVggWeights(folder)).rejects.toThrow(/model\.json: weight shards are truncated: tensor block5_conv2\/bias needs bytes/)
    await rm(shard)
    await expect(loadVggWeights(folder)).rejects.toThrow(/model\.json: missing weight shard group1-shard1of1\.bin/)
    const json = JSON.parse(await readFile(join(folder, 'model.json'), 'utf8'))
    json.weightsManifest[0].paths = ['../../etc/passwd']
    await writeFile(join(folder, 'model.json'), JSON.stringify(json))
    await expect(loadVggWeights(folder)).rejects.toThrow(/points outside the model folder/)
    await writeFile(join(folder, 'model.json'), '{"weightsManifest": ')
    await expect(loadVggWeights(folder)).rejects.toThrow(/model\.json: invalid model\.json/)
  })
})
