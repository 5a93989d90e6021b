/**
 * The one contract between the UI and the studio's services. Every transport (Electron IPC,
 * the web host's WebSocket, the CLI) validates calls with these schemas before any service
 * sees them. This module imports nothing of ours but other files of `shared`.
 */
import { z } from 'zod'
import type {
  ClassSummary,
  DatasetStats,
  DatasetSummary,
  FolderListing,
  WeightsInfo,
  ImagePage,
  ImportProgress,
  ImportReport,
  LabelActionResult,
  SystemInfo
} from './dto'
import { METHOD_NAMES, type MethodNameList } from './channels'
import {
  layerPlanSchema,
  PLAN_DEPTHS,
  PLAN_PRESET_NAMES,
  WEIGHT_NORM_CHOICES,
  type LayerPlan,
  type PlanCheck,
  type PlanPresetInfo,
  type PlanTotals
} from './layer-plan-schema'
import { hyperparametersSchema, type MetricSeries, type RunDetail, type RunProgress, type RunSummary } from './training'

interface MethodSpec<I extends z.ZodType, R> {
  input: I
  /** Phantom: carries the result type only. */
  result?: R
}

function method<R>() {
  return <I extends z.ZodType>(input: I): MethodSpec<I, R> => ({ input })
}

const noInput = z.object({}).strict().default({})
const id = z.number().int().positive()
const datasetName = z.string().trim().min(1, 'a dataset name cannot be empty').max(120, 'a dataset name is at most 120 characters')
const className = z.string().trim().min(1, 'a class name cannot be empty').max(100, 'a class name is at most 100 characters')
const split = z.enum(['train', 'validation', 'test'])
const filePath = z.string().min(1, 'a path cannot be empty').max(4096)
const dataset = z.object({ datasetId: id }).strict()

export const importSource = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('folder'), path: filePath }).strict(),
  z.object({ kind: z.literal('csv'), path: filePath }).strict(),
  z.object({ kind: z.literal('idx'), images: filePath, labels: filePath.optional() }).strict(),
  /** Single files (what the desktop app gets when image files are dropped): imported unlabelled. */
  z.object({ kind: z.literal('files'), paths: z.array(filePath).min(1, 'give at least one file').max(100_000) }).strict()
])

export const imageFilter = z
  .object({
    classId: id.optional(),
    unlabelled: z.boolean().optional(),
    split: split.optional(),
    status: z.enum(['ok', 'rejected']).optional(),
    duplicates: z.boolean().optional()
  })
  .strict()

export const splitRatios = z
  .object({ train: z.number().min(0).max(1), validation: z.number().min(0).max(1), test: z.number().min(0).max(1) })
  .strict()
  .refine((r) => Math.abs(r.train + r.validation + r.test - 1) < 1e-6, 'split ratios must add up to 1')

export const methods = {
  'system.info': method<SystemInfo>()(noInput),

  'datasets.list': method<DatasetSummary[]>()(noInput),
  'datasets.create': method<DatasetSummary>()(z.object({ name: datasetName }).strict()),
  'datasets.rename': method<DatasetSummary>()(z.object({ datasetId: id, name: datasetName }).strict()),
  'datasets.delete': method<{ deleted: boolean }>()(dataset),
  'datasets.stats': method<DatasetStats>()(dataset),
  'datasets.configureSplits': method<DatasetStats>()(
    z.object({ datasetId: id, ratios: splitRatios, seed: z.number().int().min(0).max(2 ** 31 - 1) }).strict()
  ),

  'imports.start': method<ImportProgress>()(
    z
      .object({ datasetId: id.optional(), newDatasetName: datasetName.optional(), source: importSource })
      .strict()
      .refine((v) => (v.datasetId === undefined) !== (v.newDatasetName === undefined), 'give either datasetId or newDatasetName')
  ),
  'imports.cancel': method<{ cancelled: boolean }>()(z.object({ importId: id }).strict()),
  'imports.report': method<ImportReport>()(z.object({ importId: id }).strict()),
  /** A dataset's imports, newest first, each with its report. */
  'imports.list': method<ImportReport[]>()(z.object({ datasetId: id, limit: z.number().int().min(1).max(100).default(10) }).strict()),

  'images.page': method<ImagePage>()(
    z
      .object({
        datasetId: id,
        filter: imageFilter.default({}),
        sort: z.enum(['imported', 'path', 'size']).default('imported'),
        descending: z.boolean().default(false),
        offset: z.number().int().min(0).default(0),
        limit: z.number().int().min(1).max(1000).default(200)
      })
      .strict()
  ),
  'images.setStatus': method<{ changed: number }>()(
    z.object({ datasetId: id, imageIds: z.array(id).min(1).max(100_000), status: z.enum(['ok', 'rejected']) }).strict()
  ),

  'labels.set': method<LabelActionResult>()(
    z.object({ datasetId: id, imageIds: z.array(id).min(1).max(100_000), classId: id.nullable() }).strict()
  ),
  'labels.undo': method<LabelActionResult>()(dataset),
  'labels.redo': method<LabelActionResult>()(dataset),

  'classes.list': method<ClassSummary[]>()(dataset),
  'classes.create': method<ClassSummary>()(z.object({ datasetId: id, name: className }).strict()),
  'classes.rename': method<ClassSummary>()(z.object({ datasetId: id, classId: id, name: className }).strict()),
  'classes.merge': method<LabelActionResult>()(z.object({ datasetId: id, sourceClassId: id, targetClassId: id }).strict()),
  'classes.delete': method<LabelActionResult>()(z.object({ datasetId: id, classId: id }).strict()),

  'files.browse': method<FolderListing>()(z.object({ path: filePath.optional() }).strict()),

  'weights.inspect': method<WeightsInfo>()(z.object({ path: filePath }).strict()),

  'runs.start': method<RunSummary>()(
    z
      .object({
        datasetId: id,
        name: z.string().trim().min(1).max(120).optional(),
        plan: layerPlanSchema,
        weightsPath: filePath.nullable(),
        hyperparameters: hyperparametersSchema.default(hyperparametersSchema.parse({})),
        backend: z.enum(['wasm', 'cpu', 'tensorflow', 'tensorflow-gpu']).optional()
      })
      .strict()
  ),
  'runs.list': method<RunSummary[]>()(noInput),
  'runs.get': method<RunDetail>()(z.object({ runId: id }).strict()),
  'runs.metrics': method<MetricSeries[]>()(z.object({ runId: id, names: z.array(z.string().max(200)).max(100).optional() }).strict()),
  'runs.pause': method<{ ok: boolean }>()(z.object({ runId: id }).strict()),
  'runs.resume': method<{ ok: boolean }>()(z.object({ runId: id }).strict()),
  'runs.stop': method<{ ok: boolean }>()(z.object({ runId: id }).strict()),

  'plans.presets': method<PlanPresetInfo[]>()(noInput),
  'plans.make': method<LayerPlan>()(
    z
      .object({
        preset: z.enum(PLAN_PRESET_NAMES),
        numClasses: z.number().int(),
        depth: z.union(PLAN_DEPTHS.map((d) => z.literal(d))).optional(),
        inputSize: z.number().int().optional(),
        weightNorm: z.enum(WEIGHT_NORM_CHOICES).optional(),
        fcWidth: z.number().int().optional(),
        dropout: z.number().optional(),
        pretrainedFc: z.boolean().optional()
      })
      .strict()
  ),
  'plans.evaluate': method<PlanCheck & { totals: PlanTotals }>()(
    z
      .object({
        plan: layerPlanSchema,
        batchSize: z.number().int().min(1).max(4096).default(32),
        optimizer: z.enum(['adam', 'momentum', 'sgd']).default('adam')
      })
      .strict()
  )
} satisfies { [M in MethodNameList]: MethodSpec<z.ZodType, unknown> }

export type MethodName = keyof typeof methods
export type MethodInput<M extends MethodName> = z.input<(typeof methods)[M]['input']>
export type ParsedInput<M extends MethodName> = z.output<(typeof methods)[M]['input']>
export type MethodResult<M extends MethodName> = NonNullable<(typeof methods)[M]['result']>

export const methodNames: readonly MethodName[] = METHOD_NAMES

export function isMethodName(name: unknown): name is MethodName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(methods, name)
}

/** Events the backend pushes to every subscribed UI. */
export interface StudioEvents {
  'system.heartbeat': { time: string; uptimeSeconds: number }
  'import.progress': ImportProgress
  'labels.changed': { datasetId: number }
  'run.progress': RunProgress
}

export type EventName = keyof StudioEvents
/** One event; without a type argument, the union of all of them (narrowed by `event`). */
export type StudioEvent<E extends EventName = EventName> = { [K in E]: { event: K; payload: StudioEvents[K] } }[E]

/** What every front end (preload bridge, WebSocket client) offers the renderer. */
export interface StudioClient {
  call<M extends MethodName>(method: M, input?: MethodInput<M>): Promise<MethodResult<M>>
  onEvent(listener: (event: StudioEvent) => void): () => void
}
