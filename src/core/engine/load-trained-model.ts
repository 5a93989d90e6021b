/**
 * Loading a model to run inference with: a trained run (its final or latest checkpoint plus its
 * stored spec), a checkpoint directory, a folder or file written by `export`, or any pretrained
 * weight file `loadVggWeights` reads.
 *
 * Every source is first reduced to a `ModelSource`: the exact configuration (depth, input size,
 * fc width, classes, which layers are weight-normalized), class names, preprocessing, and the
 * tensors keyed `<layer>/<kernel|bias|v|g>` as the trainer names model variables. The model is
 * then rebuilt with `buildVgg`, and either
 *
 * - the variables are assigned by name (the source's WN layers kept as they are): every variable
 *   must be found with the right shape, and every tensor must be used; or
 * - the source is reduced to plain kernels (WN folded, `w = g v/||v||`) and `buildVgg` converts
 *   them into the layers asked for (`weightNorm: 'none' | 'all'`): exact, so outputs do not change.
 */
import { readdir, stat } from 'node:fs/promises'
import { basename, extname, join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { z } from 'zod'
import { foldWeightNormValues } from '../model/fold'
import { buildVgg, planVgg, planWeightLoading, validateInputSize, vggWeightLayerNames, PRETRAINED_INPUT_SIZE, type VggDepth } from '../model/vgg'
import { isWeightNormLayer } from '../model/weight-norm'
import { loadVggWeights } from '../weights/load-weights'
import { SafetensorsFile } from '../weights/safetensors'
import { readTfjsLayersModel, tfjsModelJsonPath } from '../weights/tfjs-layers'
import type { Preprocessing, VggWeights } from '../weights/vgg-weights'
import type { Database } from '../store/db'
import { getRun } from '../store/runs-repo'
import { loadCheckpoint, readCheckpointState, MANIFEST_FILE } from './checkpoint'
import { modelVariables } from './replica'
import { preprocessingSchema } from './trainer-spec'

/** The `format` tag of everything `export` writes (tfjs metadata and safetensors `__metadata__`). */
export const EXPORT_FORMAT = 'finetune-studio-vgg'

/**
 * Which layers the rebuilt model has weight-normalized: as the source has them (a trained run's
 * WN layers; none for plain weights), none, or every conv and dense layer.
 */
export type WeightNormChoice = 'as-trained' | 'none' | 'all'

export interface ModelConfig {
  depth: VggDepth
  inputSize: number
  numClasses: number
  fcWidth: number
  dropout: number
}

export type ModelSourceKind = 'run' | 'checkpoint' | 'tfjs-export' | 'safetensors-export' | 'pretrained'

export interface SourceTensor {
  shape: number[]
  data: Float32Array
}

/** Everything needed to rebuild a model, before any tf tensor exists. */
export interface ModelSource {
  kind: ModelSourceKind
  /** The file or folder the weights come from. */
  path: string
  runId?: number
  config: ModelConfig
  classNames: string[]
  preprocessing: Preprocessing
  /** Layers that are weight-normalized in the source (their tensors are `v`, `g`, `bias`). */
  weightNorm: string[]
  /** Keyed `<layer>/<kernel|bias|v|g>`. */
  tensors: Map<string, SourceTensor>
  warnings: string[]
}

export interface LoadedModel {
  model: tf.LayersModel
  config: ModelConfig
  classNames: string[]
  preprocessing: Preprocessing
  /** Layers of the built model that are weight-normalized. */
  weightNorm: string[]
  source: { kind: ModelSourceKind; path: string; runId?: number }
  warnings: string[]
}

export interface LoadModelOptions {
  weightNorm?: WeightNormChoice
  /** The input size the caller expects; an error if the model takes another. */
  inputSize?: number
}

/** The model cannot be loaded or built as asked; the message names the file, tensor or option at fault. */
export class ModelLoadError extends Error {
  override readonly name = 'ModelLoadError'
}

/** The requested input size does not fit the model (the CLI reports it against `--input-size`). */
export class InputSizeError extends Error {
  override readonly name = 'InputSizeError'
  constructor(
    readonly inputSize: number,
    reason: string
  ) {
    super(`input size ${inputSize}: ${reason}`)
  }
}

/** Checks a requested input size before anything is loaded. */
export function checkInputSize(inputSize: number): void {
  try {
    validateInputSize(inputSize)
  } catch {
    throw new InputSizeError(inputSize, 'must be a multiple of 32 from 32 to 224 (e.g. 32, 64, 224)')
  }
}

// ---------------------------------------------------------------- runs

const storedModelSchema = z.object({
  depth: z.union([z.literal(11), z.literal(13), z.literal(16), z.literal(19)]),
  inputSize: z.number().int(),
  numClasses: z.number().int().positive(),
  fcWidth: z.number().int().positive().optional(),
  dropout: z.number().min(0).lt(1),
  weightNorm: z.array(z.string())
})

/** The part of a run's stored spec (`{plan, weightsPath, hyperparameters, trainer}`) a model needs. */
const storedSpecSchema = z.object({
  trainer: z.object({
    model: storedModelSchema,
    data: z.object({ classNames: z.array(z.string()).min(1) }),
    preprocessing: preprocessingSchema.optional(),
    checkpointDir: z.string().optional()
  })
})

export type StoredRunModel = z.infer<typeof storedSpecSchema>['trainer']

function resolveConfig(model: z.infer<typeof storedModelSchema>): ModelConfig {
  const plan = planVgg({ depth: model.depth, inputSize: model.inputSize, numClasses: model.numClasses, fcWidth: model.fcWidth, dropout: model.dropout })
  return { depth: plan.depth, inputSize: plan.inputSize, numClasses: plan.numClasses, fcWidth: plan.fcWidth, dropout: plan.dropout }
}

/** A run's stored spec, checked: what model it trained and on which classes. */
export async function readRunModelSpec(db: Database, runId: number): Promise<StoredRunModel> {
  const run = await getRun(db, runId)
  const parsed = storedSpecSchema.safeParse(run.spec)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new ModelLoadError(`run ${runId}: its stored spec does not describe a model (${issue.path.join('.')}: ${issue.message})`)
  }
  return parsed.data.trainer
}

/**
 * The checkpoint holding a run's weights: its recorded final weights, else its latest recorded
 * checkpoint, else the newest complete checkpoint in its checkpoint directory.
 */
export async function runCheckpointPath(db: Database, runId: number, checkpointDir?: string): Promise<string> {
  const run = await getRun(db, runId)
  const candidates: string[] = []
  const final = await db.get<{ path: string }>("SELECT path FROM artifacts WHERE run_id = ? AND kind = 'final-weights' ORDER BY id DESC LIMIT 1", [runId])
  if (final) candidates.push(final.path)
  const latest = await db.get<{ path: string }>('SELECT path FROM checkpoints WHERE run_id = ? ORDER BY epoch DESC LIMIT 1', [runId])
  if (latest) candidates.push(latest.path)
  if (checkpointDir) {
    const entries = await readdir(checkpointDir).catch(() => [] as string[])
    const newest = entries.filter((e) => /^epoch-\d+$/.test(e)).sort().pop()
    if (newest) candidates.push(join(checkpointDir, newest))
  }
  for (const path of candidates) {
    if (await stat(join(path, MANIFEST_FILE)).catch(() => undefined)) return path
  }
  if (candidates.length > 0) throw new ModelLoadError(`run ${runId}: its checkpoint ${candidates[0]} is missing (deleted or moved?)`)
  throw new ModelLoadError(`run ${runId} (${run.status}) has no checkpoint yet: it has not finished an epoch`)
}

function sameConfig(a: ModelConfig, b: ModelConfig): string | null {
  for (const key of ['depth', 'inputSize', 'numClasses', 'fcWidth'] as const) {
    if (a[key] !== b[key]) return `${key} ${a[key]} vs ${b[key]}`
  }
  return null
}

/** Reads a checkpoint's model variables and the configuration it was written for. */
export async function checkpointSource(path: string, expected?: { config: ModelConfig; classNames: string[]; weightNorm: string[]; runId?: number }): Promise<ModelSource> {
  const checkpoint = await loadCheckpoint(path, (name) => name.startsWith('model/'))
  const state = checkpoint.state
  const config = resolveConfig(state.model)
  if (expected) {
    const differs = sameConfig(expected.config, config)
    if (differs !== null) throw new ModelLoadError(`checkpoint ${path} was written for another model than its run's spec (${differs})`)
  }
  const tensors = new Map<string, SourceTensor>()
  for (const t of checkpoint.tensors.values()) tensors.set(t.name.slice('model/'.length), { shape: t.shape, data: t.data })
  return {
    kind: expected?.runId !== undefined ? 'run' : 'checkpoint',
    path,
    runId: expected?.runId,
    config,
    classNames: expected?.classNames ?? state.classNames,
    preprocessing: state.preprocessing,
    weightNorm: expected?.weightNorm ?? state.model.weightNorm,
    tensors,
    warnings: []
  }
}

/** The source of a run's model: its stored spec, and its final (or latest) checkpoint's weights. */
export async function runModelSource(db: Database, runId: number): Promise<ModelSource> {
  const spec = await readRunModelSpec(db, runId)
  const path = await runCheckpointPath(db, runId, spec.checkpointDir)
  return checkpointSource(path, { config: resolveConfig(spec.model), classNames: spec.data.classNames, weightNorm: spec.model.weightNorm, runId })
}

// ---------------------------------------------------------------- exported models and weight files

const exportMetadataSchema = z.object({
  format: z.literal(EXPORT_FORMAT),
  classNames: z.array(z.string()).min(1),
  preprocessing: preprocessingSchema,
  inputSize: z.number().int(),
  depth: z.union([z.literal(11), z.literal(13), z.literal(16), z.literal(19)]),
  fcWidth: z.number().int().positive(),
  numClasses: z.number().int().positive(),
  dropout: z.number().min(0).lt(1).default(0),
  sourceRunId: z.number().int().nullable().optional()
})

export type ExportMetadata = z.input<typeof exportMetadataSchema>

function parseExportMetadata(file: string, value: unknown): z.output<typeof exportMetadataSchema> {
  const parsed = exportMetadataSchema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new ModelLoadError(`${basename(file)}: invalid ${EXPORT_FORMAT} metadata (${issue.path.join('.')}: ${issue.message})`)
  }
  if (parsed.data.classNames.length !== parsed.data.numClasses) {
    throw new ModelLoadError(`${basename(file)}: metadata lists ${parsed.data.classNames.length} class names for ${parsed.data.numClasses} classes`)
  }
  return parsed.data
}

function exportSource(kind: ModelSourceKind, path: string, meta: z.output<typeof exportMetadataSchema>, tensors: Map<string, SourceTensor>): ModelSource {
  let config: ModelConfig
  try {
    config = resolveConfig({ ...meta, weightNorm: [] })
  } catch (error) {
    throw new ModelLoadError(`${basename(path)}: ${(error as Error).message}`)
  }
  return {
    kind,
    path,
    runId: meta.sourceRunId ?? undefined,
    config,
    classNames: meta.classNames,
    preprocessing: meta.preprocessing,
    weightNorm: [],
    tensors,
    warnings: []
  }
}

function jsonField(file: string, metadata: Readonly<Record<string, string>>, key: string): unknown {
  const text = metadata[key]
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch {
    throw new ModelLoadError(`${basename(file)}: __metadata__.${key} is not valid JSON`)
  }
}

/** The `__metadata__` of an exported safetensors file, in the shape of the tfjs metadata. */
function safetensorsExportMetadata(file: string, metadata: Readonly<Record<string, string>>): unknown {
  const num = (key: string) => (metadata[key] === undefined ? undefined : Number(metadata[key]))
  return {
    format: metadata.format,
    classNames: jsonField(file, metadata, 'class_names'),
    preprocessing: jsonField(file, metadata, 'preprocessing'),
    inputSize: num('input_size'),
    depth: num('depth'),
    fcWidth: num('fc_width'),
    numClasses: num('num_classes'),
    dropout: num('dropout'),
    sourceRunId: metadata.source_run_id ? Number(metadata.source_run_id) : null
  }
}

function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false
  )
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined
}

function classNamesOf(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : undefined
}

/** Pretrained weights (any format loadVggWeights reads): only a full classifier (at 224) can predict. */
async function pretrainedSource(path: string): Promise<ModelSource> {
  const loaded = await loadVggWeights(path)
  if (!loaded.hasTop || loaded.numClasses === undefined) {
    throw new ModelLoadError(
      `${basename(path)} has no classifier head (notop weights: convolutions${loaded.weights.has('fc1') ? ', fc1 and fc2' : ''} only), so it cannot predict classes; use weights with fc1, fc2 and predictions, or a trained run`
    )
  }
  const fc2 = loaded.weights.get('fc2') as { kernelShape: number[] }
  const config: ModelConfig = { depth: loaded.depth, inputSize: PRETRAINED_INPUT_SIZE, numClasses: loaded.numClasses, fcWidth: fc2.kernelShape[1], dropout: 0 }
  // A file may carry class names (an exported model's metadata style); else ImageNet indices.
  let classNames: string[] | undefined
  if (loaded.format === 'safetensors') {
    const file = await SafetensorsFile.open(path)
    try {
      classNames = classNamesOf(file.metadata?.class_names === undefined ? undefined : jsonField(path, file.metadata, 'class_names'))
    } finally {
      await file.close()
    }
  } else if (loaded.format === 'tfjs-layers') {
    classNames = classNamesOf((await readTfjsLayersModel(path)).userDefinedMetadata?.classNames)
  }
  if (classNames !== undefined && classNames.length !== loaded.numClasses) classNames = undefined
  const tensors = new Map<string, SourceTensor>()
  for (const [layer, w] of loaded.weights) {
    tensors.set(`${layer}/kernel`, { shape: w.kernelShape, data: w.kernel })
    tensors.set(`${layer}/bias`, { shape: [w.bias.length], data: w.bias })
  }
  return {
    kind: 'pretrained',
    path,
    config,
    classNames: classNames ?? Array.from({ length: loaded.numClasses }, (_, i) => `class ${i}`),
    preprocessing: loaded.preprocessing,
    weightNorm: [],
    tensors,
    warnings: loaded.warnings
  }
}

/**
 * The source behind a path: a checkpoint directory, a folder (or model.json) or .safetensors
 * file written by `export`, or pretrained weights in any format loadVggWeights reads.
 */
export async function pathModelSource(path: string): Promise<ModelSource> {
  if (!(await exists(path))) throw new ModelLoadError(`${path}: no such file or folder`)
  const dir = await isDirectory(path)
  if (dir && (await exists(join(path, MANIFEST_FILE)))) {
    await readCheckpointState(path)
    return checkpointSource(path)
  }
  if (dir || extname(path).toLowerCase() === '.json') {
    const modelJson = await tfjsModelJsonPath(path)
    if (await exists(modelJson)) {
      const model = await readTfjsLayersModel(path)
      if (model.userDefinedMetadata?.format === EXPORT_FORMAT) {
        const meta = parseExportMetadata(modelJson, model.userDefinedMetadata)
        const tensors = new Map<string, SourceTensor>()
        for (const [key, t] of model.tensors) tensors.set(key, { shape: t.shape, data: t.data })
        return exportSource('tfjs-export', modelJson, meta, tensors)
      }
    }
    return pretrainedSource(path)
  }
  const head = await SafetensorsFile.open(path).catch(() => null)
  if (head !== null) {
    try {
      if (head.metadata?.format === EXPORT_FORMAT) {
        const meta = parseExportMetadata(path, safetensorsExportMetadata(path, head.metadata))
        const tensors = new Map<string, SourceTensor>()
        for (const info of head.tensors.values()) tensors.set(info.name, { shape: info.shape, data: await head.readFloat32(info.name) })
        return exportSource('safetensors-export', path, meta, tensors)
      }
    } finally {
      await head.close()
    }
  }
  return pretrainedSource(path)
}

// ---------------------------------------------------------------- building

function shapeText(shape: readonly (number | null)[]): string {
  return `[${shape.join(', ')}]`
}

function sameShape(a: readonly (number | null)[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i])
}

function describeSource(source: ModelSource): string {
  return source.kind === 'run' ? `run ${source.runId} (checkpoint ${source.path})` : basename(source.path) || source.path
}

/** Plain kernels of every layer, WN folded (`w = g v/||v||`, per output channel). */
export function plainWeightsOf(source: ModelSource): VggWeights {
  const where = describeSource(source)
  const weights: VggWeights = new Map()
  for (const layer of vggWeightLayerNames(source.config.depth)) {
    const get = (kind: string): SourceTensor | undefined => source.tensors.get(`${layer}/${kind}`)
    const bias = get('bias')
    const v = get('v')
    if (v !== undefined) {
      const g = get('g')
      if (g === undefined) throw new ModelLoadError(`${where} has ${layer}/v but no ${layer}/g`)
      weights.set(layer, foldWeightNormValues(v.data, v.shape, g.data, bias?.data ?? null))
      continue
    }
    const kernel = get('kernel')
    if (kernel === undefined) throw new ModelLoadError(`${where} has no ${layer}/kernel (nor ${layer}/v), which the model needs`)
    if (bias === undefined) throw new ModelLoadError(`${where} has no ${layer}/bias, which the model needs`)
    weights.set(layer, { kernel: kernel.data, kernelShape: [...kernel.shape], bias: bias.data })
  }
  return weights
}

/** Assigns every variable of `model` from the tensor of the same `<layer>/<kind>` name. */
function assignByName(model: tf.LayersModel, source: ModelSource): void {
  const where = describeSource(source)
  const used = new Set<string>()
  for (const v of modelVariables(model)) {
    const t = source.tensors.get(v.key)
    if (t === undefined) throw new ModelLoadError(`${where} has no ${v.key}, which the model needs`)
    const shape = v.variable.shape
    if (!sameShape(shape, t.shape)) {
      throw new ModelLoadError(`${where}: ${v.key} has shape ${shapeText(t.shape)}, the model needs ${shapeText(shape)}`)
    }
    tf.tidy(() => {
      v.variable.write(tf.tensor(t.data, t.shape, 'float32'))
    })
    used.add(v.key)
  }
  const extra = [...source.tensors.keys()].filter((k) => !used.has(k))
  if (extra.length > 0) throw new ModelLoadError(`${where} has ${extra[0]}${extra.length > 1 ? ` and ${extra.length - 1} more` : ''}, which the model does not have`)
}

function weightNormLayersFor(choice: WeightNormChoice, source: ModelSource): string[] {
  if (choice === 'as-trained') return [...source.weightNorm]
  return choice === 'all' ? vggWeightLayerNames(source.config.depth) : []
}

/** Builds the model a source describes, with its weights. */
export function buildFromSource(source: ModelSource, options: LoadModelOptions = {}): LoadedModel {
  const { config } = source
  if (options.inputSize !== undefined) {
    checkInputSize(options.inputSize)
    if (options.inputSize !== config.inputSize) {
      const why = source.kind === 'pretrained' ? 'its pretrained classifier (fc1) fits only' : 'it was trained at'
      throw new InputSizeError(options.inputSize, `${describeSource(source)} takes ${config.inputSize}x${config.inputSize} images (${why} ${config.inputSize})`)
    }
  }
  const weightNorm = weightNormLayersFor(options.weightNorm ?? 'as-trained', source)
  const sameLayers = weightNorm.length === source.weightNorm.length && weightNorm.every((l) => source.weightNorm.includes(l))
  const base = { depth: config.depth, inputSize: config.inputSize, numClasses: config.numClasses, fcWidth: config.fcWidth, dropout: config.dropout, weightNorm: new Set(weightNorm) }
  let model: tf.LayersModel
  if (sameLayers && source.weightNorm.length > 0) {
    // The source's own variables (v, g included), assigned by name.
    model = buildVgg(base)
    try {
      assignByName(model, source)
    } catch (error) {
      model.dispose()
      throw error
    }
  } else {
    // Plain kernels, converted exactly into whichever layers were asked for.
    const weights = plainWeightsOf(source)
    const plan = planVgg(base)
    let skip: { layer: string; reason: string }[]
    try {
      skip = planWeightLoading(plan, weights).skip
    } catch (error) {
      throw new ModelLoadError(`${describeSource(source)}: ${(error as Error).message}`)
    }
    if (skip.length > 0) throw new ModelLoadError(`${describeSource(source)}: ${skip[0].layer} cannot be loaded: ${skip[0].reason}`)
    const used = new Set([...weights.keys()].flatMap((l) => [`${l}/kernel`, `${l}/bias`, `${l}/v`, `${l}/g`]))
    const extra = [...source.tensors.keys()].find((k) => !used.has(k))
    if (extra !== undefined) throw new ModelLoadError(`${describeSource(source)} has ${extra}, which the model does not have`)
    model = buildVgg({ ...base, weights })
  }
  return {
    model,
    config,
    classNames: source.classNames,
    preprocessing: source.preprocessing,
    weightNorm: model.layers.filter(isWeightNormLayer).map((l) => l.name),
    source: { kind: source.kind, path: source.path, runId: source.runId },
    warnings: source.warnings
  }
}

/** A trained run's model, rebuilt exactly (or with the WN layers asked for). */
export async function loadRunModel(db: Database, runId: number, options: LoadModelOptions = {}): Promise<LoadedModel> {
  if (options.inputSize !== undefined) checkInputSize(options.inputSize)
  return buildFromSource(await runModelSource(db, runId), options)
}

/** The model behind a checkpoint directory, an exported model, or a pretrained weight file. */
export async function loadModelFromPath(path: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  if (options.inputSize !== undefined) checkInputSize(options.inputSize)
  return buildFromSource(await pathModelSource(path), options)
}
