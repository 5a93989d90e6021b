/**
 * Keras HDF5 weight files (`vgg16_weights_tf_dim_ordering_tf_kernels(_notop).h5`, or any
 * `model.save_weights('x.h5')` / `model.save('x.h5')` from Keras 1/2), read through h5wasm.
 *
 * Structure: the root (or `/model_weights` in a full-model file) has a `layer_names` attribute;
 * each layer's group has a `weight_names` attribute whose entries are dataset paths relative to
 * that group: `block1_conv1_W_1:0` (Keras 1) or `block1_conv1/kernel:0` (Keras 2).
 */
import { open } from 'node:fs/promises'
import type { Attribute, Dataset, Group } from 'h5wasm/node'

type H5wasm = typeof import('h5wasm/node').default
import { WeightFileError, formatShape } from './weight-file-error'
import type { VggWeights } from './vgg-weights'

export type KerasWeightRole = 'kernel' | 'bias'

export interface KerasWeightEntry {
  layer: string
  /** As listed in the layer's `weight_names`. */
  weightName: string
  /** Absolute dataset path inside the file. */
  path: string
  role?: KerasWeightRole
  shape: number[]
}

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]
// Read slices of at most this many bytes so a 400 MB fc1 never sits whole in the wasm heap
// next to its copy.
const DEFAULT_READ_SLICE_BYTES = 64 * 1024 * 1024

export interface KerasH5OpenOptions {
  /** Largest slice read from HDF5 at once; big datasets are read in row slices. */
  readSliceBytes?: number
}

let loaded: Promise<H5wasm> | undefined

/** h5wasm ships only as an ES module: imported on first use, so CommonJS callers (the CLI, the trainer) can load this file. */
function h5(): Promise<H5wasm> {
  loaded ??= import('h5wasm/node').then(async ({ default: lib }) => {
    await lib.ready
    return lib
  })
  return loaded
}

/** Whether `bytes` holds the 8-byte HDF5 signature at `at`. */
export function hasHdf5SignatureAt(bytes: Uint8Array, at: number): boolean {
  return HDF5_SIGNATURE.every((b, i) => bytes[at + i] === b)
}

/** Offsets where HDF5 allows the superblock: 0, 512, 1024, 2048, ... */
export function hdf5SuperblockOffsets(fileSize: number): number[] {
  const offsets = [0]
  for (let at = 512; at + 8 <= fileSize; at *= 2) offsets.push(at)
  return offsets
}

/** Whether a file starts (or has its superblock) with the HDF5 signature. */
export async function isHdf5File(path: string): Promise<boolean> {
  return (await findSuperblock(path)) !== undefined
}

async function findSuperblock(path: string): Promise<{ offset: number; bytes: Uint8Array; fileSize: number } | undefined> {
  const handle = await open(path, 'r')
  try {
    const { size } = await handle.stat()
    for (const offset of hdf5SuperblockOffsets(size)) {
      const bytes = new Uint8Array(96)
      const { bytesRead } = await handle.read(bytes, 0, bytes.length, offset)
      if (bytesRead >= 8 && hasHdf5SignatureAt(bytes, 0)) return { offset, bytes: bytes.subarray(0, bytesRead), fileSize: size }
    }
    return undefined
  } finally {
    await handle.close()
  }
}

function readAddress(view: DataView, at: number, size: number): bigint | undefined {
  if (at + size > view.byteLength) return undefined
  let value = 0n
  for (let i = size - 1; i >= 0; i--) value = (value << 8n) | BigInt(view.getUint8(at + i))
  return value === (1n << BigInt(size * 8)) - 1n ? undefined : value
}

/**
 * Check the superblock's end-of-file address against the real size, so a truncated file gets a
 * clear error here instead of a failed open deep inside the HDF5 library.
 */
async function checkHdf5(path: string): Promise<void> {
  const found = await findSuperblock(path)
  if (!found) throw new WeightFileError(path, 'not an HDF5 file (no HDF5 signature): corrupt, truncated or another format')
  const { bytes, fileSize } = found
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const version = bytes[8]
  let offsetSize: number
  let baseAt: number
  let eofAt: number
  if (version === 0 || version === 1) {
    offsetSize = bytes[13]
    baseAt = version === 0 ? 24 : 28
    eofAt = baseAt + 2 * offsetSize
  } else if (version === 2 || version === 3) {
    offsetSize = bytes[9]
    baseAt = 12
    eofAt = baseAt + 2 * offsetSize
  } else {
    return
  }
  if (![2, 4, 8].includes(offsetSize)) return
  const base = readAddress(view, baseAt, offsetSize) ?? 0n
  const eof = readAddress(view, eofAt, offsetSize)
  if (eof !== undefined && base + eof > BigInt(fileSize)) {
    throw new WeightFileError(path, `file is truncated: HDF5 superblock says ${base + eof} bytes, file has ${fileSize}`)
  }
}

function attributeStrings(file: string, owner: string, attr: Attribute): string[] {
  const value = attr.value
  if (typeof value === 'string') return [value]
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[]
  // h5py writes an empty list as an empty float64 array.
  if (ArrayBuffer.isView(value) && (value as ArrayLike<number>).length === 0) return []
  if (value instanceof Uint8Array) return [new TextDecoder().decode(value).replace(/\0+$/, '')]
  throw new WeightFileError(file, `attribute ${attr.name} of ${owner} is not a list of strings`)
}

/** A string-list attribute; Keras splits long ones into `name0`, `name1`, ... */
function readStringList(file: string, group: Group, name: string): string[] | undefined {
  const attrs = group.attrs
  if (attrs[name]) return attributeStrings(file, group.path, attrs[name])
  if (!attrs[`${name}0`]) return undefined
  const all: string[] = []
  for (let i = 0; attrs[`${name}${i}`]; i++) all.push(...attributeStrings(file, group.path, attrs[`${name}${i}`]))
  return all
}

/** kernel/bias from a weight name: `kernel:0`, `block1_conv1_W_1:0`, `bias:0`, `fc1_b:0`, ... */
export function kerasWeightRole(weightName: string): KerasWeightRole | undefined {
  const leaf = (weightName.split('/').pop() ?? '').replace(/:\d+$/, '').replace(/_\d+$/, '')
  if (/(^|_)(kernel|W)$/.test(leaf)) return 'kernel'
  if (/(^|_)(bias|b)$/.test(leaf)) return 'bias'
  return undefined
}

/** An open Keras weights file. Dataset values are read on demand. */
export class KerasH5File {
  private constructor(
    readonly path: string,
    private readonly file: InstanceType<H5wasm['File']>,
    private readonly lib: H5wasm,
    readonly layerNames: string[],
    readonly entries: KerasWeightEntry[],
    readonly attributes: Readonly<Record<string, string>>,
    private readonly readSliceBytes: number
  ) {}

  static async open(path: string, options: KerasH5OpenOptions = {}): Promise<KerasH5File> {
    await checkHdf5(path)
    const lib = await h5()
    const file = new lib.File(path, 'r')
    if (file.file_id < 0n) throw new WeightFileError(path, 'HDF5 library could not open the file (corrupt?)')
    try {
      let root: Group = file
      let layerNames = readStringList(path, root, 'layer_names')
      if (!layerNames) {
        const modelWeights = file.get('model_weights')
        if (modelWeights instanceof lib.Group) {
          root = modelWeights
          layerNames = readStringList(path, root, 'layer_names')
        }
      }
      if (!layerNames) {
        throw new WeightFileError(path, 'not a Keras weights file: no layer_names attribute (Keras 3 .weights.h5 files are not supported)')
      }
      const entries: KerasWeightEntry[] = []
      for (const layer of layerNames) {
        const group = root.get(layer)
        if (!(group instanceof lib.Group)) throw new WeightFileError(path, `layer ${layer} is listed in layer_names but has no group`, layer)
        const weightNames = readStringList(path, group, 'weight_names') ?? []
        let roles: (KerasWeightRole | undefined)[] = weightNames.map(kerasWeightRole)
        // Keras always stores kernel then bias; use that order when the names say nothing.
        if (weightNames.length === 2 && !roles[0] && !roles[1]) roles = ['kernel', 'bias']
        weightNames.forEach((weightName, i) => {
          const dataset = group.get(weightName)
          const datasetPath = `${group.path === '/' ? '' : group.path}/${weightName}`
          if (!(dataset instanceof lib.Dataset)) throw new WeightFileError(path, `missing dataset ${datasetPath}`, datasetPath)
          entries.push({ layer, weightName, path: datasetPath, role: roles[i], shape: dataset.shape ?? [] })
        })
      }
      const attributes: Record<string, string> = {}
      for (const key of ['keras_version', 'backend']) {
        const attr = file.attrs[key] ?? root.attrs[key]
        if (attr && typeof attr.value === 'string') attributes[key] = attr.value
      }
      return new KerasH5File(path, file, lib, layerNames, entries, attributes, options.readSliceBytes ?? DEFAULT_READ_SLICE_BYTES)
    } catch (e) {
      file.close()
      throw e
    }
  }

  /** A float32 or float64 dataset as float32. */
  readFloat32(datasetPath: string): Float32Array {
    const dataset = this.file.get(datasetPath)
    if (!(dataset instanceof this.lib.Dataset)) throw new WeightFileError(this.path, `missing dataset ${datasetPath}`, datasetPath)
    const meta = dataset.metadata
    // type 1 is H5T_FLOAT
    if (meta.type !== 1 || (meta.size !== 4 && meta.size !== 8)) {
      throw new WeightFileError(this.path, `dataset ${datasetPath} has dtype ${String(dataset.dtype)}; expected float32 or float64`, datasetPath)
    }
    if (!meta.littleEndian) throw new WeightFileError(this.path, `dataset ${datasetPath} is big-endian, which is not supported`, datasetPath)
    const shape = dataset.shape ?? []
    const total = shape.reduce((a, b) => a * b, 1)
    const out = new Float32Array(total)
    const rowSize = shape.length > 0 && shape[0] > 0 ? total / shape[0] : total
    const rowsPerSlice = Math.max(1, Math.floor(this.readSliceBytes / Math.max(1, rowSize * meta.size)))
    if (shape.length === 0 || rowsPerSlice >= shape[0]) {
      out.set(asFloatArray(this.path, datasetPath, dataset.value, total))
      return out
    }
    for (let r = 0; r < shape[0]; r += rowsPerSlice) {
      const r1 = Math.min(shape[0], r + rowsPerSlice)
      out.set(asFloatArray(this.path, datasetPath, dataset.slice([[r, r1]]), (r1 - r) * rowSize), r * rowSize)
    }
    return out
  }

  close(): void {
    this.file.close()
  }
}

function asFloatArray(file: string, datasetPath: string, value: unknown, expected: number): Float32Array | Float64Array {
  if ((value instanceof Float32Array || value instanceof Float64Array) && value.length === expected) return value
  throw new WeightFileError(file, `dataset ${datasetPath} could not be read as ${expected} floats`, datasetPath)
}

// ---------------------------------------------------------------- writing

export interface KerasH5WriteOptions {
  /** 'keras1': `block1_conv1_W_1:0` in the layer group; 'keras2': `block1_conv1/kernel:0`. */
  style?: 'keras1' | 'keras2'
  /** Also list the weightless layers (input, pools, flatten) as Keras does. Default true. */
  weightlessLayers?: boolean
  /** Put everything under `/model_weights`, as `model.save('x.h5')` does. */
  fullModel?: boolean
}

function layerOrder(weights: VggWeights, weightless: boolean): string[] {
  const names = [...weights.keys()]
  if (!weightless) return names
  const order = ['input_1']
  let block = 0
  for (const name of names) {
    const m = /^block(\d+)_conv\d+$/.exec(name)
    const b = m ? Number(m[1]) : 0
    if (block && b !== block) order.push(`block${block}_pool`)
    if (name === 'fc1') order.push('flatten')
    order.push(name)
    block = b
  }
  if (block) order.push(`block${block}_pool`)
  return order
}

function fixedStrings(group: Group, name: string, values: string[]): void {
  if (values.length === 0) {
    group.create_attribute(name, new Float64Array(0), [0])
    return
  }
  const width = Math.max(1, ...values.map((v) => Buffer.byteLength(v)))
  group.create_attribute(name, values, [values.length], `S${width}`)
}

/** Write canonical weights in the Keras HDF5 weights layout (for tests and export). */
export async function writeKerasH5(path: string, weights: VggWeights, options: KerasH5WriteOptions = {}): Promise<void> {
  const style = options.style ?? 'keras2'
  const lib = await h5()
  const file = new lib.File(path, 'w')
  try {
    const root: Group = options.fullModel ? file.create_group('model_weights') : file
    file.create_attribute('keras_version', style === 'keras1' ? '1.2.2' : '2.2.4')
    file.create_attribute('backend', 'tensorflow')
    const order = layerOrder(weights, options.weightlessLayers ?? true)
    fixedStrings(root, 'layer_names', order)
    for (const layer of order) {
      const group = root.create_group(layer)
      const w = weights.get(layer)
      if (!w) {
        fixedStrings(group, 'weight_names', [])
        continue
      }
      const names = style === 'keras1' ? [`${layer}_W_1:0`, `${layer}_b_1:0`] : [`${layer}/kernel:0`, `${layer}/bias:0`]
      fixedStrings(group, 'weight_names', names)
      const parent = style === 'keras1' ? group : group.create_group(layer)
      const leaf = (n: string): string => n.split('/').pop() ?? n
      writeDataset(parent, leaf(names[0]), w.kernel, w.kernelShape)
      writeDataset(parent, leaf(names[1]), w.bias, [w.bias.length])
    }
  } finally {
    file.close()
  }
}

function writeDataset(group: Group, name: string, data: Float32Array, shape: number[]): Dataset {
  if (data.length !== shape.reduce((a, b) => a * b, 1)) {
    throw new Error(`keras writer: ${group.path}/${name} has ${data.length} values for shape ${formatShape(shape)}`)
  }
  return group.create_dataset({ name, data, shape, dtype: '<f' })
}
