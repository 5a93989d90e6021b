/**
 * `predict`, `evaluate` and `export`: inference with trained runs, exported models and
 * pretrained weight files. TensorFlow.js and the engine load only when one of these runs, so the
 * other commands start as fast as before.
 */
import fs from 'node:fs'
import path from 'node:path'
import { Command, InvalidArgumentError, Option } from 'commander'
import type { BackendName } from '../shared/dto'
import { Database } from '../core/store/db'
import { databasePath, resolveDataDir } from '../core/store/data-dir'
import type * as LoadModule from '../core/engine/load-trained-model'
import type * as PredictModule from '../core/engine/predict'
import type * as EvaluateModule from '../core/engine/evaluate'
import type * as ExportModule from '../core/engine/export-model'
import type * as BackendModule from '../core/engine/select-backend'

type WeightNormFlag = 'as-trained' | 'none' | 'all'
type SplitName = 'train' | 'validation' | 'test'

interface EngineOptions {
  dataDir?: string
  json?: boolean
  backend?: BackendName
  weightNorm?: WeightNormFlag
}

interface Engine {
  load: typeof LoadModule
  predict: typeof PredictModule
  evaluate: typeof EvaluateModule
  exporter: typeof ExportModule
}

/** Loads the engine (TensorFlow.js and all) and activates a backend. */
async function engine(backend: BackendName | undefined): Promise<Engine> {
  /* eslint-disable @typescript-eslint/no-require-imports -- loaded on first use: TensorFlow.js is heavy */
  const select = require('../core/engine/select-backend') as typeof BackendModule
  const loaded: Engine = {
    load: require('../core/engine/load-trained-model') as typeof LoadModule,
    predict: require('../core/engine/predict') as typeof PredictModule,
    evaluate: require('../core/engine/evaluate') as typeof EvaluateModule,
    exporter: require('../core/engine/export-model') as typeof ExportModule
  }
  /* eslint-enable @typescript-eslint/no-require-imports */
  await select.selectBackend({ forced: backend })
  return loaded
}

function positiveInt(what: string) {
  return (value: string): number => {
    const n = Number(value)
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what} must be a positive whole number`)
    return n
  }
}

function inputSize(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n % 32 !== 0 || n < 32 || n > 224) throw new InvalidArgumentError('must be a multiple of 32 from 32 to 224 (e.g. 32, 64, 224)')
  return n
}

function runId(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a run id (a positive whole number)')
  return n
}

const backendOption = () => new Option('--backend <name>', 'TensorFlow.js backend (default: the fastest that loads)').choices(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'])
const weightNormOption = () =>
  new Option('--weight-norm <which>', 'layers built weight-normalized (converted exactly; outputs do not change): as trained, none, or all').choices(['as-trained', 'none', 'all']).default('as-trained')

/** Opens the studio database read-mostly, without the side effects of opening a Studio. */
async function withDatabase<T>(dataDirFlag: string | undefined, work: (db: Database) => Promise<T>): Promise<T> {
  const dataDir = resolveDataDir({ flag: dataDirFlag })
  const file = databasePath(dataDir)
  if (!fs.existsSync(file)) throw new Error(`no studio database at ${file} (wrong --data-dir?)`)
  const db = await Database.open(file)
  try {
    return await work(db)
  } finally {
    await db.close()
  }
}

/** Reports an input size the model cannot take against the flag. */
async function withInputSizeFlag<T>(e: Engine, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    if (error instanceof e.load.InputSizeError) throw new Error(`--input-size ${error.message}`.replace(`input size ${error.inputSize}: `, `${error.inputSize}: `), { cause: error })
    throw error
  }
}

function describeModel(loaded: LoadModule.LoadedModel): string {
  const { config, source } = loaded
  const from = source.kind === 'run' ? `run ${source.runId}` : `${source.kind} ${source.path}`
  const wn = loaded.weightNorm.length === 0 ? 'no WN layers' : `WN: ${loaded.weightNorm.join(', ')}`
  return `${from}: VGG${config.depth} @${config.inputSize}, ${config.numClasses} classes, ${wn}`
}

function percent(p: number): string {
  return `${(100 * p).toFixed(2)}%`
}

async function loadModel(
  e: Engine,
  opts: { run?: number; weights?: string; dataDir?: string; weightNorm?: WeightNormFlag; inputSize?: number }
): Promise<LoadModule.LoadedModel> {
  const options = { weightNorm: opts.weightNorm ?? 'as-trained', inputSize: opts.inputSize }
  return withInputSizeFlag(e, async () => {
    if (opts.run !== undefined) {
      const id = opts.run
      return withDatabase(opts.dataDir, (db) => e.load.loadRunModel(db, id, options))
    }
    return e.load.loadModelFromPath(path.resolve(opts.weights as string), options)
  })
}

function exactlyOneModel(opts: { run?: number; weights?: string }): void {
  if ((opts.run === undefined) === (opts.weights === undefined)) throw new Error('give either --run ID or --weights FILE|DIR')
}

function predictCommand(dataDirOption: () => Option): Command {
  return new Command('predict')
    .description('classify one image with a trained run, an exported model, or pretrained weights')
    .option('--run <id>', 'a trained run (its final weights and class names)', runId)
    .option('--weights <path>', 'weights: a folder or .safetensors written by `export`, a checkpoint folder, or pretrained VGG weights (.safetensors, .h5, TF.js folder)')
    .requiredOption('--image <file>', 'the image to classify')
    .option('--top <k>', 'how many classes to list', positiveInt('--top'), 5)
    .addOption(weightNormOption())
    .option('--input-size <n>', "the model's input size (checked against the model; default: the model's own)", inputSize)
    .addOption(backendOption())
    .addOption(dataDirOption())
    .option('--json', 'print JSON: {"top":[{"index","label","probability","logit"}, ...]}')
    .action(async (opts: EngineOptions & { run?: number; weights?: string; image: string; top: number; inputSize?: number }) => {
      exactlyOneModel(opts)
      const e = await engine(opts.backend)
      const loaded = await loadModel(e, opts)
      try {
        const result = await e.predict.predictImage(loaded, path.resolve(opts.image), { top: opts.top })
        if (opts.json) {
          console.log(
            JSON.stringify({
              image: path.resolve(opts.image),
              top: result.top,
              model: { source: loaded.source.kind, path: loaded.source.path, runId: loaded.source.runId ?? null, inputSize: loaded.config.inputSize, weightNorm: loaded.weightNorm },
              warnings: loaded.warnings
            })
          )
          return
        }
        for (const w of loaded.warnings) console.error(`warning: ${w}`)
        console.log(`${path.resolve(opts.image)}  (${describeModel(loaded)})`)
        const width = Math.max(...result.top.map((t) => t.label.length))
        result.top.forEach((t, i) => console.log(`${String(i + 1).padStart(3)}. ${t.label.padEnd(width)}  ${percent(t.probability).padStart(7)}  logit ${t.logit.toFixed(4)}`))
      } finally {
        loaded.model.dispose()
      }
    })
}

function formatReport(report: EvaluateModule.EvaluationReport): string[] {
  const lines = [`accuracy ${percent(report.accuracy)} on ${report.count} images`, '']
  const width = Math.max(5, ...report.classNames.map((c) => c.length))
  lines.push(`${'class'.padEnd(width)}  precision  recall     f1  support`)
  for (const c of report.perClass) {
    lines.push(`${c.class.padEnd(width)}  ${c.precision.toFixed(4).padStart(9)}  ${c.recall.toFixed(4).padStart(6)}  ${c.f1.toFixed(4).padStart(5)}  ${String(c.support).padStart(7)}`)
  }
  lines.push(`${'macro'.padEnd(width)}  ${report.macro.precision.toFixed(4).padStart(9)}  ${report.macro.recall.toFixed(4).padStart(6)}  ${report.macro.f1.toFixed(4).padStart(5)}`, '')
  lines.push('confusion matrix (rows: true class, columns: predicted)')
  const cell = Math.max(5, ...report.confusionMatrix.flat().map((n) => String(n).length), ...report.classNames.map((c) => c.length))
  lines.push(`${''.padEnd(width)}  ${report.classNames.map((c) => c.padStart(cell)).join(' ')}`)
  report.confusionMatrix.forEach((row, t) => lines.push(`${report.classNames[t].padEnd(width)}  ${row.map((n) => String(n).padStart(cell)).join(' ')}`))
  return lines
}

function evaluateCommand(dataDirOption: () => Option): Command {
  return new Command('evaluate')
    .description("accuracy, per-class precision/recall/F1 and the confusion matrix of a run (default: on its snapshot's held-out test split)")
    .option('--run <id>', 'the trained run to evaluate', runId)
    .option('--weights <path>', 'or a model from a path (an export, a checkpoint folder); needs --data')
    .option('--data <dir>', 'evaluate on a folder with one subfolder per class, named as the model\'s classes')
    .option('--dataset <id>', "evaluate on a dataset's split as it is labelled now (classes matched by name)", positiveInt('--dataset'))
    .addOption(new Option('--split <split>', 'which split of the snapshot or dataset').choices(['train', 'validation', 'test']).default('test'))
    .option('--batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 32)
    .addOption(weightNormOption())
    .addOption(backendOption())
    .addOption(dataDirOption())
    .option('--json', 'print JSON: {accuracy, perClass, confusionMatrix, classNames, ...}')
    .action(async (opts: EngineOptions & { run?: number; weights?: string; data?: string; dataset?: number; split: SplitName; batchSize: number }) => {
      exactlyOneModel(opts)
      if (opts.data !== undefined && opts.dataset !== undefined) throw new Error('give --data DIR or --dataset ID, not both')
      if (opts.weights !== undefined && opts.data === undefined) throw new Error('--weights needs --data DIR (only a run has a dataset snapshot)')
      const e = await engine(opts.backend)
      const loaded = await loadModel(e, opts)
      try {
        let source: string
        let items: EvaluateModule.EvaluationItem[]
        if (opts.data !== undefined) {
          source = path.resolve(opts.data)
          items = await e.evaluate.folderEvaluationItems(source, loaded.classNames)
        } else {
          const { dataset, split, run } = opts
          items = await withDatabase(opts.dataDir, async (db) => {
            if (dataset !== undefined) return e.evaluate.datasetEvaluationItems(db, dataset, loaded.classNames, split)
            const row = await db.get<{ snapshot_id: number | null }>('SELECT snapshot_id FROM runs WHERE id = ?', [run])
            if (!row?.snapshot_id) throw new Error(`run ${run} has no dataset snapshot: give --data DIR or --dataset ID`)
            return e.evaluate.snapshotEvaluationItems(db, row.snapshot_id, loaded.classNames, split)
          })
          source = dataset !== undefined ? `dataset ${dataset} (${split} split)` : `run ${run}'s snapshot (${split} split)`
        }
        const onProgress = opts.json ? undefined : (done: number, total: number) => process.stderr.write(`\r${done}/${total} images`)
        const report = await e.evaluate.evaluateModel(loaded, items, { batchSize: opts.batchSize, onProgress })
        const { predictions: _predictions, ...summary } = report
        if (opts.json) {
          console.log(JSON.stringify({ ...summary, data: source, model: { source: loaded.source.kind, path: loaded.source.path, runId: loaded.source.runId ?? null } }))
          return
        }
        process.stderr.write('\n')
        console.log(`${describeModel(loaded)}\non ${source}\n`)
        for (const line of formatReport(summary)) console.log(line)
      } finally {
        loaded.model.dispose()
      }
    })
}

function exportCommand(dataDirOption: () => Option): Command {
  return new Command('export')
    .description('export a trained run with weight normalization folded away: a TF.js layers model, or canonical safetensors')
    .requiredOption('--run <id>', 'the trained run to export', runId)
    .addOption(new Option('--format <format>', 'tfjs: a TF.js layers-model folder; safetensors: model.safetensors with Keras-named tensors').choices(['tfjs', 'safetensors']).makeOptionMandatory())
    .requiredOption('--out <dir>', 'a new or empty folder to write into')
    .addOption(backendOption())
    .addOption(dataDirOption())
    .option('--json', 'print JSON with the files written')
    .action(async (opts: EngineOptions & { run: number; format: ExportModule.ExportFormat; out: string }) => {
      const e = await engine(opts.backend)
      const loaded = await loadModel(e, { ...opts, weightNorm: 'as-trained' })
      try {
        const result = await e.exporter.exportModel(loaded, opts.format, opts.out, { sourceRunId: opts.run })
        if (opts.json) return console.log(JSON.stringify({ ...result, runId: opts.run }))
        console.log(`Exported run ${opts.run} (${describeModel(loaded)}) as ${opts.format} into ${result.dir}: ${result.files.join(', ')} (${(result.bytes / 1e6).toFixed(1)} MB)`)
      } finally {
        loaded.model.dispose()
      }
    })
}

/** The `predict`, `evaluate` and `export` commands. */
export function modelCommands(dataDirOption: () => Option): Command[] {
  return [predictCommand(dataDirOption), evaluateCommand(dataDirOption), exportCommand(dataDirOption)]
}
