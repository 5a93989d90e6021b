/**
 * Random VGG weights written in every supported format, for the weight-import tests.
 *
 * The torch layouts are produced here with naive per-element index formulas, deliberately
 * independent of src/core/weights/layouts.ts, so a round trip checks the loader's conversions
 * against a second implementation rather than against themselves.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { NamedTensorMap } from '@tensorflow/tfjs'
import { writeKerasH5, type KerasH5WriteOptions } from '../../src/core/weights/keras-h5'
import { writeSafetensors, type SafetensorsDtype, type SafetensorsTensorInput } from '../../src/core/weights/safetensors'
import type { Preprocessing, VggWeights } from '../../src/core/weights/vgg-weights'
import { vggSpec, type VggDepth, type VggSpec } from '../../src/core/weights/vgg-spec'
import { seededRandom } from '../../src/core/seeded-random'

export interface RandomVggOptions {
  depth: VggDepth
  widthDivisor?: number
  /** 'full': fc1, fc2, predictions; 'notop': convolutions only; 'no-head': fc1 and fc2. */
  top?: 'full' | 'notop' | 'no-head'
  numClasses?: number
  seed?: number
}


function randomArray(n: number, random: () => number): Float32Array {
  const a = new Float32Array(n)
  for (let i = 0; i < n; i++) a[i] = random() * 2 - 1
  return a
}

export function randomVggWeights(options: RandomVggOptions): VggWeights {
  const spec = vggSpec(options)
  const random = seededRandom(options.seed ?? 1)
  const top = options.top ?? 'full'
  const weights: VggWeights = new Map()
  const add = (name: string, shape: number[]): void => {
    const n = shape.reduce((a, b) => a * b, 1)
    weights.set(name, { kernel: randomArray(n, random), kernelShape: shape, bias: randomArray(shape[shape.length - 1], random) })
  }
  for (const c of spec.convs) add(c.name, [...c.kernelShape])
  if (top !== 'notop') {
    add('fc1', [spec.fc1Inputs, spec.fcUnits])
    add('fc2', [spec.fcUnits, spec.fcUnits])
  }
  if (top === 'full') add('predictions', [spec.fcUnits, options.numClasses ?? 10])
  return weights
}

// ---------------------------------------------------------------- naive torch layouts

/** canonical HWIO [kh,kw,in,out] -> torch OIHW, element by element. */
export function naiveHwioToOihw(k: Float32Array, [kh, kw, ci, co]: number[]): Float32Array {
  const out = new Float32Array(k.length)
  for (let o = 0; o < co; o++)
    for (let i = 0; i < ci; i++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++) out[((o * ci + i) * kh + y) * kw + x] = k[((y * kw + x) * ci + i) * co + o]
  return out
}

/** canonical fc1 [H*W*C, out] (HWC rows) -> torch [out, C*H*W] (CHW columns). */
export function naiveFc1ToTorch(k: Float32Array, c: number, h: number, w: number, outputs: number): Float32Array {
  const out = new Float32Array(k.length)
  for (let o = 0; o < outputs; o++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[o * c * h * w + ch * h * w + y * w + x] = k[((y * w + x) * c + ch) * outputs + o]
  return out
}

/** canonical dense [in, out] -> torch Linear [out, in]. */
export function naiveDenseToTorch(k: Float32Array, inputs: number, outputs: number): Float32Array {
  const out = new Float32Array(k.length)
  for (let o = 0; o < outputs; o++) for (let i = 0; i < inputs; i++) out[o * inputs + i] = k[i * outputs + o]
  return out
}

function featureIndices(spec: VggSpec): Map<string, number> {
  const indices = new Map<string, number>()
  let i = 0
  let block = 1
  for (const c of spec.convs) {
    if (c.block !== block) {
      i += 1 // the pool closing the previous block
      block = c.block
    }
    indices.set(c.name, i)
    i += 2 // conv + ReLU
  }
  return indices
}

export type TorchFlavorName = 'torchvision' | 'timm'

export interface TorchTensorsOptions {
  flavor: TorchFlavorName
  depth: VggDepth
  widthDivisor?: number
}

/** A torchvision or timm state dict (float32 values, torch shapes) from canonical weights. */
export function torchStateDict(weights: VggWeights, options: TorchTensorsOptions): Map<string, { shape: number[]; data: Float32Array }> {
  const spec = vggSpec(options)
  const timm = options.flavor === 'timm'
  const out = new Map<string, { shape: number[]; data: Float32Array }>()
  const indices = featureIndices(spec)
  for (const c of spec.convs) {
    const w = weights.get(c.name)
    if (!w) continue
    const [kh, kw, ci, co] = w.kernelShape
    out.set(`features.${indices.get(c.name)}.weight`, { shape: [co, ci, kh, kw], data: naiveHwioToOihw(w.kernel, w.kernelShape) })
    out.set(`features.${indices.get(c.name)}.bias`, { shape: [co], data: w.bias })
  }
  const fc1 = weights.get('fc1')
  if (fc1) {
    const outputs = fc1.kernelShape[1]
    const c = spec.lastChannels
    const s = spec.mapSize
    const name = timm ? 'pre_logits.fc1' : 'classifier.0'
    out.set(`${name}.weight`, {
      shape: timm ? [outputs, c, s, s] : [outputs, c * s * s],
      data: naiveFc1ToTorch(fc1.kernel, c, s, s, outputs)
    })
    out.set(`${name}.bias`, { shape: [outputs], data: fc1.bias })
  }
  for (const [layer, tv, tm, conv] of [
    ['fc2', 'classifier.3', 'pre_logits.fc2', true],
    ['predictions', 'classifier.6', 'head.fc', false]
  ] as const) {
    const w = weights.get(layer)
    if (!w) continue
    const [inputs, outputs] = w.kernelShape
    const name = timm ? tm : tv
    out.set(`${name}.weight`, {
      shape: timm && conv ? [outputs, inputs, 1, 1] : [outputs, inputs],
      data: naiveDenseToTorch(w.kernel, inputs, outputs)
    })
    out.set(`${name}.bias`, { shape: [outputs], data: w.bias })
  }
  return out
}

export interface TorchSafetensorsOptions extends TorchTensorsOptions {
  dtype?: SafetensorsDtype
  /** e.g. 'module.' as nn.DataParallel writes. */
  prefix?: string
  /** Change the state dict before writing (drop, add, reshape or poison tensors). */
  edit?: (tensors: Map<string, SafetensorsTensorInput>) => void
}

export async function writeTorchSafetensors(path: string, weights: VggWeights, options: TorchSafetensorsOptions): Promise<Map<string, SafetensorsTensorInput>> {
  const tensors = new Map<string, SafetensorsTensorInput>()
  for (const [name, t] of torchStateDict(weights, options)) {
    tensors.set(`${options.prefix ?? ''}${name}`, { dtype: options.dtype ?? 'F32', shape: t.shape, data: t.data })
  }
  options.edit?.(tensors)
  await writeSafetensors(path, tensors, { format: 'pt' })
  return tensors
}

/** torchvision's vgg{depth}_bn state dict names and shapes (values random), to test rejection. */
export function batchNormStateDict(options: { depth: VggDepth; widthDivisor?: number }): Map<string, SafetensorsTensorInput> {
  const spec = vggSpec(options)
  const random = seededRandom(7)
  const out = new Map<string, SafetensorsTensorInput>()
  let i = 0
  let block = 1
  for (const c of spec.convs) {
    if (c.block !== block) {
      i += 1
      block = c.block
    }
    const co = c.outChannels
    out.set(`features.${i}.weight`, { dtype: 'F32', shape: [co, c.inChannels, 3, 3], data: randomArray(co * c.inChannels * 9, random) })
    out.set(`features.${i}.bias`, { dtype: 'F32', shape: [co], data: randomArray(co, random) })
    for (const p of ['weight', 'bias', 'running_mean', 'running_var']) {
      out.set(`features.${i + 1}.${p}`, { dtype: 'F32', shape: [co], data: randomArray(co, random) })
    }
    out.set(`features.${i + 1}.num_batches_tracked`, { dtype: 'I64', shape: [], data: [100] })
    i += 3
  }
  return out
}

export async function writeKerasFile(path: string, weights: VggWeights, options: KerasH5WriteOptions = {}): Promise<void> {
  await writeKerasH5(path, weights, options)
}

export interface TfjsFolderOptions {
  preprocessing?: Preprocessing
  /** Split the weights into shards of this many bytes (tfjs's converter uses 4 MB). */
  shardBytes?: number
  /** Prefix of every weight name, e.g. 'vgg16/' for a nested model. */
  namePrefix?: string
}

/** A TF.js layers-model folder whose weights are encoded by tfjs itself. */
export async function writeTfjsFolder(dir: string, weights: VggWeights, options: TfjsFolderOptions = {}): Promise<void> {
  // Loaded here only: importing tfjs costs seconds, and most tests never need it.
  const tf = await import('@tensorflow/tfjs')
  await mkdir(dir, { recursive: true })
  const named: NamedTensorMap = {}
  for (const [layer, w] of weights) {
    named[`${options.namePrefix ?? ''}${layer}/kernel`] = tf.tensor(w.kernel, w.kernelShape)
    named[`${options.namePrefix ?? ''}${layer}/bias`] = tf.tensor(w.bias, [w.bias.length])
  }
  const { data, specs } = await tf.io.encodeWeights(named)
  tf.dispose(Object.values(named))
  const bytes = new Uint8Array(data)
  const shardBytes = options.shardBytes ?? 4 * 1024 * 1024
  const count = Math.max(1, Math.ceil(bytes.byteLength / shardBytes))
  const paths = Array.from({ length: count }, (_, k) => `group1-shard${k + 1}of${count}.bin`)
  for (let k = 0; k < count; k++) await writeFile(join(dir, paths[k]), bytes.subarray(k * shardBytes, (k + 1) * shardBytes))
  const modelJson = {
    format: 'layers-model',
    generatedBy: 'finetune-studio test generator',
    convertedBy: null,
    modelTopology: { class_name: 'Sequential', config: { name: 'vgg', layers: [] } },
    weightsManifest: [{ paths, weights: specs }],
    ...(options.preprocessing ? { userDefinedMetadata: { preprocessing: options.preprocessing } } : {})
  }
  await writeFile(join(dir, 'model.json'), JSON.stringify(modelJson))
}

export async function makeTempDir(prefix = 'vgg-weights-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}

/**
 * Bitwise equality of two float arrays; undefined when equal, else where they first differ.
 * (vitest's toEqual walks typed arrays element by element and is far too slow for weights.)
 */
export function floatsDiffer(actual: Float32Array, expected: Float32Array): string | undefined {
  if (actual.length !== expected.length) return `length ${actual.length} != ${expected.length}`
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength)
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)
  if (a.equals(b)) return undefined
  const i = actual.findIndex((v, k) => !Object.is(v, expected[k]))
  return `first difference at ${i}: ${actual[i]} != ${expected[i]}`
}

/** undefined when both sets hold the same layers, shapes and values (bitwise), else why not. */
export function vggWeightsDiffer(actual: VggWeights, expected: VggWeights): string | undefined {
  const names = [...actual.keys()].join(',')
  if (names !== [...expected.keys()].join(',')) return `layers ${names} != ${[...expected.keys()].join(',')}`
  for (const [name, e] of expected) {
    const a = actual.get(name)
    if (!a) return `missing ${name}`
    if (a.kernelShape.join(',') !== e.kernelShape.join(',')) return `${name} shape [${a.kernelShape}] != [${e.kernelShape}]`
    const k = floatsDiffer(a.kernel, e.kernel)
    if (k) return `${name} kernel: ${k}`
    const b = floatsDiffer(a.bias, e.bias)
    if (b) return `${name} bias: ${b}`
  }
  return undefined
}
