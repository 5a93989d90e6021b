/**
 * Import pretrained VGG weights from any supported file, auto-detected, into the canonical
 * VggWeights form (Keras names, HWIO / [in,out] kernels, HWC-flattened fc1 input).
 *
 * Every format is reduced to a table of named source tensors; a per-source plan then says which
 * tensors make each canonical layer, the shapes they must have, and how to convert them. So the
 * checks (missing, extra, wrong shape, non-finite values) are written once for all formats.
 */
import { open, stat } from 'node:fs/promises'
import { basename, extname } from 'node:path'
import { KerasH5File, hasHdf5SignatureAt, hdf5SuperblockOffsets } from './keras-h5'
import { oihwToHwio, type Shape4 } from './layouts'
import { SafetensorsFile } from './safetensors'
import { readTfjsLayersModel, parsePreprocessing, tfjsModelJsonPath, TFJS_PREPROCESSING_KEY } from './tfjs-layers'
import { detectTorchFlavor, findBatchNormTensors, torchNameMap, type TorchFlavor } from './torch-names'
import { WeightFileError, formatShape } from './weight-file-error'
import {
  CAFFE_PREPROCESSING,
  TORCHVISION_PREPROCESSING,
  type Preprocessing,
  type VggWeights
} from './vgg-weights'
import { depthFromConvCount, fcKernelShapes, vggSpec, type VggDepth, type VggSpec } from './vgg-spec'

export type WeightSource = 'torchvision' | 'timm' | 'keras' | 'tfjs'
export type WeightFormat = 'safetensors' | 'keras-h5' | 'tfjs-layers'

export interface LoadVggWeightsOptions {
  /** Expected depth; when omitted it is inferred from the file. */
  depth?: VggDepth
  /** Channel/width scale-down of the expected shapes, for small test models. Default 1 (real VGG). */
  widthDivisor?: number
}

export interface LoadedVggWeights {
  weights: VggWeights
  source: WeightSource
  format: WeightFormat
  depth: VggDepth
  preprocessing: Preprocessing
  /** fc1, fc2 and predictions are all present. (fc1+fc2 without a head loads with hasTop false.) */
  hasTop: boolean
  numClasses?: number
  /** Things the user should know, e.g. an assumed preprocessing. */
  warnings: string[]
}

interface SourceTensor {
  /** The name in the file, for messages. */
  fileName: string
  shape: number[]
  read: () => Promise<Float32Array>
}

type TensorTable = Map<string, SourceTensor>

interface LayerPlan {
  layer: string
  kernel: string
  bias: string
  kernelShape: number[]
  /** torch tensors are converted as OIHW viewed with this shape; others are already canonical. */
  torchView?: Shape4
  canonicalShape: number[]
}

interface OpenedSource {
  file: string
  format: WeightFormat
  source: WeightSource
  tensors: TensorTable
  /** Canonical layer -> [kernel, bias] names in `tensors`. */
  names: (depth: VggDepth) => { layer: string; kernel: string; bias: string }[]
  convCount: number
  preprocessing: Preprocessing
  warnings: string[]
  close: () => Promise<void>
}

const UNKNOWN_FORMAT = 'unknown weight format: not safetensors, HDF5, or a TF.js model folder'

/** Detect the format of a path without reading it whole. */
export async function detectWeightFormat(path: string): Promise<WeightFormat> {
  const s = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw e.code === 'ENOENT' ? new WeightFileError(path, 'no such file or folder') : e
  })
  if (s.isDirectory()) {
    const modelJson = await tfjsModelJsonPath(path)
    if (!(await stat(modelJson).catch(() => undefined))) throw new WeightFileError(path, `${UNKNOWN_FORMAT} (folder has no model.json)`)
    return 'tfjs-layers'
  }
  if (extname(path).toLowerCase() === '.json') return 'tfjs-layers'
  const handle = await open(path, 'r')
  try {
    const head = new Uint8Array(16)
    const { bytesRead } = await handle.read(head, 0, 16, 0)
    for (const offset of hdf5SuperblockOffsets(s.size)) {
      const sig = new Uint8Array(8)
      await handle.read(sig, 0, 8, offset)
      if (hasHdf5SignatureAt(sig, 0)) return 'keras-h5'
    }
    // A little-endian u64 header length below 4 GiB, then the header's opening brace.
    if (bytesRead >= 9 && head[4] === 0 && head[5] === 0 && head[6] === 0 && head[7] === 0 && head[8] === 0x7b) return 'safetensors'
    const ext = extname(path).toLowerCase()
    if (ext === '.h5' || ext === '.hdf5') {
      throw new WeightFileError(path, 'not a valid HDF5 file: no HDF5 signature (corrupt or truncated?)')
    }
    if (bytesRead >= 2 && head[0] === 0x50 && head[1] === 0x4b) {
      throw new WeightFileError(path, `${UNKNOWN_FORMAT} (a zip archive: PyTorch .pth checkpoints and Keras 3 .keras files are not supported; convert to .safetensors or .h5)`)
    }
    if (bytesRead >= 1 && head[0] === 0x80) {
      throw new WeightFileError(path, `${UNKNOWN_FORMAT} (a Python pickle: convert PyTorch checkpoints to .safetensors)`)
    }
    throw new WeightFileError(path, UNKNOWN_FORMAT)
  } finally {
    await handle.close()
  }
}

/** Load VGG weights from a .safetensors (torchvision/timm), Keras .h5 or TF.js folder. */
export async function loadVggWeights(path: string, options: LoadVggWeightsOptions = {}): Promise<LoadedVggWeights> {
  const format = await detectWeightFormat(path)
  const opened =
    format === 'safetensors' ? await openSafetensors(path) : format === 'keras-h5' ? await openKeras(path) : await openTfjs(path)
  try {
    return await convert(opened, options)
  } finally {
    await opened.close()
  }
}

// ---------------------------------------------------------------- sources

async function openSafetensors(path: string): Promise<OpenedSource> {
  const file = await SafetensorsFile.open(path)
  try {
    const all = [...file.tensors.keys()]
    const bn = findBatchNormTensors(all)
    if (bn.length > 0) {
      throw new WeightFileError(path, `batch-norm VGG (e.g. vgg16_bn) is not supported: found ${bn[0]}; use the plain vgg16 weights`, bn[0])
    }
    // nn.DataParallel saves every name with a "module." prefix.
    const prefix = all.length > 0 && all.every((n) => n.startsWith('module.')) ? 'module.' : ''
    const tensors: TensorTable = new Map()
    for (const info of file.tensors.values()) {
      tensors.set(info.name.slice(prefix.length), { fileName: info.name, shape: info.shape, read: () => file.readFloat32(info.name) })
    }
    const flavor: TorchFlavor | undefined = detectTorchFlavor(tensors.keys())
    if (!flavor) {
      const sample = all.slice(0, 3).join(', ') || 'none'
      throw new WeightFileError(path, `not a torchvision or timm VGG state dict (tensors: ${sample}${all.length > 3 ? ', ...' : ''})`)
    }
    const convCount = [...tensors].filter(([n, t]) => /^features\.\d+\.weight$/.test(n) && t.shape.length === 4).length
    return {
      file: path,
      format: 'safetensors',
      source: flavor,
      tensors,
      names: (depth) => torchNameMap(flavor, depth).map((n) => ({ layer: n.layer, kernel: n.weight, bias: n.bias })),
      convCount,
      preprocessing: TORCHVISION_PREPROCESSING,
      warnings: [],
      close: () => file.close()
    }
  } catch (e) {
    await file.close()
    throw e
  }
}

function kerasStyleNames(depth: VggDepth): { layer: string; kernel: string; bias: string }[] {
  return [...vggSpec({ depth }).convs.map((c) => c.name), 'fc1', 'fc2', 'predictions'].map((layer) => ({
    layer,
    kernel: `${layer}/kernel`,
    bias: `${layer}/bias`
  }))
}

function countConvLayers(tensors: TensorTable): number {
  return new Set([...tensors.keys()].filter((k) => /^block\d+_conv\d+\//.test(k)).map((k) => k.split('/')[0])).size
}

function checkNoBatchNormLayers(file: string, names: Iterable<string>): void {
  const bn = [...names].find((n) => /moving_mean|moving_variance|batch_?norm/i.test(n))
  if (bn) throw new WeightFileError(file, `batch-norm VGG is not supported: found ${bn}`, bn)
}

async function openKeras(path: string): Promise<OpenedSource> {
  const file = await KerasH5File.open(path)
  try {
    checkNoBatchNormLayers(path, file.entries.map((e) => e.path))
    const tensors: TensorTable = new Map()
    for (const entry of file.entries) {
      const key = `${entry.layer}/${entry.role ?? entry.weightName}`
      if (tensors.has(key)) throw new WeightFileError(path, `layer ${entry.layer} has two ${entry.role ?? entry.weightName} weights`, entry.path)
      tensors.set(key, { fileName: entry.path, shape: entry.shape, read: async () => file.readFloat32(entry.path) })
    }
    return {
      file: path,
      format: 'keras-h5',
      source: 'keras',
      tensors,
      names: kerasStyleNames,
      convCount: countConvLayers(tensors),
      preprocessing: CAFFE_PREPROCESSING,
      warnings: [],
      close: async () => file.close()
    }
  } catch (e) {
    file.close()
    throw e
  }
}

async function openTfjs(path: string): Promise<OpenedSource> {
  const model = await readTfjsLayersModel(path)
  const file = model.modelJsonPath
  checkNoBatchNormLayers(file, [...model.tensors.values()].map((t) => t.name))
  const tensors: TensorTable = new Map()
  for (const [key, t] of model.tensors) tensors.set(key, { fileName: t.name, shape: t.shape, read: async () => t.data })
  const warnings: string[] = []
  let preprocessing = parsePreprocessing(file, model.userDefinedMetadata?.[TFJS_PREPROCESSING_KEY])
  if (!preprocessing) {
    preprocessing = CAFFE_PREPROCESSING
    warnings.push(
      `${basename(file)} has no userDefinedMetadata.${TFJS_PREPROCESSING_KEY}; assuming Keras (caffe) preprocessing: BGR, mean subtracted, no scaling`
    )
  }
  return {
    file,
    format: 'tfjs-layers',
    source: 'tfjs',
    tensors,
    names: kerasStyleNames,
    convCount: countConvLayers(tensors),
    preprocessing,
    warnings,
    close: async () => {}
  }
}

// ---------------------------------------------------------------- checking and converting

function resolveDepth(src: OpenedSource, requested: VggDepth | undefined): VggDepth {
  const found = depthFromConvCount(src.convCount)
  if (requested !== undefined && found !== undefined && found !== requested) {
    throw new WeightFileError(src.file, `file holds VGG${found} weights (${src.convCount} conv layers), but VGG${requested} was requested`)
  }
  // With an unrecognised conv count, check against VGG16 so the error names the missing tensor.
  return requested ?? found ?? 16
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i])
}

function buildPlan(src: OpenedSource, spec: VggSpec): { plan: LayerPlan[]; hasTop: boolean; numClasses?: number } {
  const { file, tensors } = src
  const names = src.names(spec.depth)
  const torch = src.source === 'torchvision' || src.source === 'timm'
  const present = (layer: string): boolean => {
    const n = names.find((x) => x.layer === layer)
    return !!n && (tensors.has(n.kernel) || tensors.has(n.bias))
  }
  const fcPresent = [present('fc1'), present('fc2'), present('predictions')]
  const fcCount = fcPresent[2] ? 3 : fcPresent[1] || fcPresent[0] ? 2 : 0

  // The head is the one layer whose width comes from the file: take it from the bias (or, if
  // that is missing, the kernel's output axis) and check everything else against it.
  let numClasses: number | undefined
  const head = names.find((n) => n.layer === 'predictions')
  if (fcCount === 3 && head) {
    const bias = tensors.get(head.bias)
    const kernel = tensors.get(head.kernel)
    if (bias) numClasses = bias.shape[0]
    else if (kernel) numClasses = torch ? kernel.shape[0] : kernel.shape[kernel.shape.length - 1]
  }
  const fcShapes = fcKernelShapes(spec, numClasses ?? 0)
  const plan: LayerPlan[] = []
  for (const n of names) {
    let canonicalShape: number[]
    let kernelShape: number[]
    let torchView: Shape4 | undefined
    const conv = spec.convs.find((c) => c.name === n.layer)
    if (conv) {
      canonicalShape = conv.kernelShape
      torchView = [conv.outChannels, conv.inChannels, 3, 3]
      kernelShape = torch ? [...torchView] : canonicalShape
    } else {
      const index = ['fc1', 'fc2', 'predictions'].indexOf(n.layer)
      if (index >= fcCount) continue
      const layer = n.layer as 'fc1' | 'fc2' | 'predictions'
      canonicalShape = fcShapes[layer]
      const [inputs, outputs] = canonicalShape
      if (layer === 'fc1') {
        torchView = [outputs, spec.lastChannels, spec.mapSize, spec.mapSize]
        kernelShape = !torch ? canonicalShape : src.source === 'timm' ? [...torchView] : [outputs, inputs]
      } else {
        torchView = [outputs, inputs, 1, 1]
        kernelShape = !torch ? canonicalShape : src.source === 'timm' && layer === 'fc2' ? [...torchView] : [outputs, inputs]
      }
    }
    plan.push({ layer: n.layer, kernel: n.kernel, bias: n.bias, kernelShape, torchView: torch ? torchView : undefined, canonicalShape })
  }

  for (const p of plan) {
    for (const [name, expected] of [
      [p.kernel, p.kernelShape],
      [p.bias, [p.canonicalShape[p.canonicalShape.length - 1]]]
    ] as const) {
      const t = tensors.get(name)
      if (!t) {
        const hint = p.layer === 'fc2' && fcCount === 2 && !present('fc2') ? ' (fc1 is present, so fc2 must be too)' : ''
        throw new WeightFileError(file, `missing tensor ${name} (layer ${p.layer})${hint}`, name)
      }
      if (!sameShape(t.shape, expected)) {
        throw new WeightFileError(
          file,
          `tensor ${t.fileName} has shape ${formatShape(t.shape)}, expected ${formatShape(expected)} for VGG${spec.depth}${spec.widthDivisor > 1 ? ` (width / ${spec.widthDivisor})` : ''} layer ${p.layer}`,
          t.fileName
        )
      }
    }
  }
  const used = new Set(plan.flatMap((p) => [p.kernel, p.bias]))
  const extra = [...tensors.keys()].filter((k) => !used.has(k))
  if (extra.length > 0) {
    const t = tensors.get(extra[0]) as SourceTensor
    const more = extra.length > 1 ? ` and ${extra.length - 1} more` : ''
    throw new WeightFileError(file, `unexpected tensor ${t.fileName}${more}: not part of a VGG${spec.depth}`, t.fileName)
  }
  return { plan, hasTop: fcCount === 3, numClasses }
}

function checkFinite(file: string, name: string, data: Float32Array): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]
    // v - v is NaN exactly for NaN and +-Infinity, and cheaper than Number.isFinite here.
    if (v - v !== 0) {
      throw new WeightFileError(file, `tensor ${name} contains ${Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity'} (at flat index ${i})`, name)
    }
  }
}

async function convert(src: OpenedSource, options: LoadVggWeightsOptions): Promise<LoadedVggWeights> {
  const depth = resolveDepth(src, options.depth)
  const spec = vggSpec({ depth, widthDivisor: options.widthDivisor })
  const { plan, hasTop, numClasses } = buildPlan(src, spec)
  const weights: VggWeights = new Map()
  for (const p of plan) {
    const kt = src.tensors.get(p.kernel) as SourceTensor
    const bt = src.tensors.get(p.bias) as SourceTensor
    const raw = await kt.read()
    checkFinite(src.file, kt.fileName, raw)
    const bias = await bt.read()
    checkFinite(src.file, bt.fileName, bias)
    const kernel = p.torchView ? oihwToHwio(raw, p.torchView) : raw
    weights.set(p.layer, { kernel, kernelShape: [...p.canonicalShape], bias })
  }
  return {
    weights,
    source: src.source,
    format: src.format,
    depth,
    preprocessing: src.preprocessing,
    hasTop,
    numClasses,
    warnings: src.warnings
  }
}
