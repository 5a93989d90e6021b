/**
 * Exporting a trained model with weight normalization folded away (`w = g v/||v||`), so the
 * result is a plain VGG (Conv2D / Dense only) that computes what the trained model computes.
 *
 * - tfjs: a TF.js layers-model folder: `model.json` (topology, weights manifest, and
 *   `userDefinedMetadata` with the class names, preprocessing and input size) plus binary
 *   shards of at most 4 MiB, as `tensorflowjs_converter` writes them; `tf.loadLayersModel`
 *   reads it, and so does `loadModelFromPath`.
 * - safetensors: one `model.safetensors` with the canonical Keras-named tensors
 *   (`block1_conv1/kernel` HWIO, `fc1/kernel` [in, out], `.../bias`) and string metadata
 *   (`class_names`, `preprocessing`, `input_size`, `fc_width`, `format`, ...).
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { foldModel, foldModelWeights } from '../model/fold'
import { isWeightNormLayer } from '../model/weight-norm'
import { writeSafetensors, type SafetensorsTensorInput } from '../weights/safetensors'
import { EXPORT_FORMAT, type ExportMetadata, type LoadedModel } from './load-trained-model'

export type ExportFormat = 'tfjs' | 'safetensors'

export const EXPORT_FORMATS: readonly ExportFormat[] = ['tfjs', 'safetensors']

/** Shard size of the tfjs export (tensorflowjs_converter's default). */
export const TFJS_SHARD_BYTES = 4 * 1024 * 1024

export const TFJS_MODEL_FILE = 'model.json'
export const SAFETENSORS_MODEL_FILE = 'model.safetensors'

export interface ExportOptions {
  /** Recorded in the metadata (default: the loaded model's run, if any). */
  sourceRunId?: number | null
  shardBytes?: number
}

export interface ExportResult {
  format: ExportFormat
  dir: string
  /** Files written, relative to `dir`. */
  files: string[]
  bytes: number
  metadata: ExportMetadata
}

/** What an export records about the model besides its weights. */
export function exportMetadata(loaded: LoadedModel, sourceRunId: number | null): ExportMetadata {
  const { config } = loaded
  return {
    format: EXPORT_FORMAT,
    classNames: [...loaded.classNames],
    preprocessing: loaded.preprocessing,
    inputSize: config.inputSize,
    depth: config.depth,
    fcWidth: config.fcWidth,
    numClasses: config.numClasses,
    dropout: config.dropout,
    sourceRunId
  }
}

async function prepareDir(dir: string): Promise<string> {
  const out = resolve(dir)
  const entries = await readdir(out).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[]
    throw new Error(error.code === 'ENOTDIR' ? `${out} is a file, not a folder` : `${out}: ${error.message}`)
  })
  if (entries.length > 0) throw new Error(`${out} is not empty; export into a new or empty folder`)
  await mkdir(out, { recursive: true })
  return out
}

/** Writes a TF.js layers-model folder of the model with WN folded away. */
export async function exportTfjsModel(loaded: LoadedModel, dir: string, options: ExportOptions = {}): Promise<ExportResult> {
  const metadata = exportMetadata(loaded, options.sourceRunId ?? loaded.source.runId ?? null)
  const shardBytes = options.shardBytes ?? TFJS_SHARD_BYTES
  const plain = foldModel(loaded.model)
  try {
    const wn = plain.layers.find(isWeightNormLayer)
    if (wn) throw new Error(`export: ${wn.name} is still weight-normalized after folding`)
    plain.setUserDefinedMetadata({ ...metadata })
    let artifacts: tf.io.ModelArtifacts | undefined
    await plain.save(
      tf.io.withSaveHandler(async (a) => {
        artifacts = a
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) }
      })
    )
    if (artifacts === undefined || artifacts.weightData === undefined || artifacts.weightSpecs === undefined) throw new Error('export: TF.js saved no weights')
    const out = await prepareDir(dir)
    const data = new Uint8Array(new tf.io.CompositeArrayBuffer(artifacts.weightData).slice())
    const count = Math.max(1, Math.ceil(data.byteLength / shardBytes))
    const paths = Array.from({ length: count }, (_, i) => `group1-shard${i + 1}of${count}.bin`)
    for (let i = 0; i < count; i++) await writeFile(join(out, paths[i]), data.subarray(i * shardBytes, Math.min(data.byteLength, (i + 1) * shardBytes)))
    const modelJson = {
      format: 'layers-model',
      generatedBy: artifacts.generatedBy,
      convertedBy: 'finetune-studio',
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths, weights: artifacts.weightSpecs }],
      userDefinedMetadata: metadata
    }
    const json = JSON.stringify(modelJson)
    await writeFile(join(out, TFJS_MODEL_FILE), json)
    return { format: 'tfjs', dir: out, files: [TFJS_MODEL_FILE, ...paths], bytes: data.byteLength + Buffer.byteLength(json), metadata }
  } finally {
    plain.dispose()
  }
}

/** Writes `model.safetensors`: canonical Keras-named float32 tensors with WN folded, and the metadata. */
export async function exportSafetensorsModel(loaded: LoadedModel, dir: string, options: ExportOptions = {}): Promise<ExportResult> {
  const metadata = exportMetadata(loaded, options.sourceRunId ?? loaded.source.runId ?? null)
  const weights = foldModelWeights(loaded.model)
  const tensors = new Map<string, SafetensorsTensorInput>()
  let bytes = 0
  for (const [layer, w] of weights) {
    tensors.set(`${layer}/kernel`, { dtype: 'F32', shape: w.kernelShape, data: w.kernel })
    tensors.set(`${layer}/bias`, { dtype: 'F32', shape: [w.bias.length], data: w.bias })
    bytes += 4 * (w.kernel.length + w.bias.length)
  }
  const strings: Record<string, string> = {
    format: EXPORT_FORMAT,
    class_names: JSON.stringify(metadata.classNames),
    preprocessing: JSON.stringify(metadata.preprocessing),
    input_size: String(metadata.inputSize),
    depth: String(metadata.depth),
    fc_width: String(metadata.fcWidth),
    num_classes: String(metadata.numClasses),
    dropout: String(metadata.dropout ?? 0)
  }
  if (metadata.sourceRunId !== null && metadata.sourceRunId !== undefined) strings.source_run_id = String(metadata.sourceRunId)
  const out = await prepareDir(dir)
  await writeSafetensors(join(out, SAFETENSORS_MODEL_FILE), tensors, strings)
  return { format: 'safetensors', dir: out, files: [SAFETENSORS_MODEL_FILE], bytes, metadata }
}

export function exportModel(loaded: LoadedModel, format: ExportFormat, dir: string, options: ExportOptions = {}): Promise<ExportResult> {
  return format === 'tfjs' ? exportTfjsModel(loaded, dir, options) : exportSafetensorsModel(loaded, dir, options)
}
