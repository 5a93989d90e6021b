import fs from 'node:fs'
import path from 'node:path'
import { Command } from 'commander'
import type { ImportProgress, ImportSource } from '../shared/dto'
import { ApiError } from '../shared/errors'
import type { MethodInput, MethodName, MethodResult } from '../shared/api'
import { Studio } from '../core/services/studio'
import { resolveDataDir } from '../core/store/data-dir'
import { exportDataset } from '../core/services/dataset-export'

export interface CommonOptions {
  dataDir?: string
  json?: boolean
}

export async function withStudio<T>(options: CommonOptions, work: (call: Caller, studio: Studio) => Promise<T>): Promise<T> {
  const studio = await Studio.open({ dataDir: resolveDataDir({ flag: options.dataDir }), transport: 'cli', heartbeatSeconds: 0 })
  const call: Caller = async (method, input) => {
    const outcome = await studio.call(method, input)
    if (!outcome.ok) throw new ApiError(outcome.error)
    return outcome.result as never
  }
  try {
    return await work(call, studio)
  } finally {
    await studio.close()
  }
}

export type Caller = <M extends MethodName>(method: M, input?: MethodInput<M>) => Promise<MethodResult<M>>

function progressLine(p: ImportProgress): string {
  const eta = p.etaSeconds === null ? '' : `, ETA ${p.etaSeconds}s`
  return `${p.processed}/${p.total} files (${p.imported} new, ${p.alreadyPresent} already there, ${p.duplicates} duplicates, ${p.rejected} rejected) ${p.imagesPerSecond} images/s${eta}`
}

function sourceFor(target: string, options: { csv?: boolean; idxLabels?: string }): ImportSource {
  if (options.idxLabels) return { kind: 'idx', images: target, labels: options.idxLabels }
  if (options.csv || target.toLowerCase().endsWith('.csv')) return { kind: 'csv', path: target }
  if (/idx\d-ubyte(\.gz)?$/.test(target)) return { kind: 'idx', images: target }
  return { kind: 'folder', path: target }
}

export function datasetCommand(dataDirOption: () => import('commander').Option): Command {
  const dataset = new Command('dataset').description('import, inspect and export datasets')

  dataset
    .command('import <source>')
    .description('import a folder (one subfolder per class, or flat), a CSV of file,label, or MNIST IDX files')
    .addOption(dataDirOption())
    .option('--name <name>', 'name of the new dataset (default: the folder name)')
    .option('--dataset <id>', 'add to an existing dataset instead', Number)
    .option('--csv', 'the source is a CSV of file,label rows')
    .option('--idx-labels <file>', 'the source is an IDX image file and this its label file')
    .option('--json', 'print one JSON object with the result')
    .action(async (target: string, opts: CommonOptions & { name?: string; dataset?: number; csv?: boolean; idxLabels?: string }) => {
      await withStudio(opts, async (call, studio) => {
        const source = sourceFor(target, opts)
        const name = opts.name ?? path.basename(path.resolve(target)).replace(/\.(csv|gz)$/i, '')
        const existing = opts.dataset ?? (await call('datasets.list')).find((d) => d.name === name)?.id
        if (!opts.json) {
          studio.onEvent((e) => {
            if (e.event === 'import.progress') process.stderr.write(`\r${progressLine(e.payload)}   `)
          })
        }
        const finished = await studio.imports.runToEnd(existing !== undefined ? { datasetId: existing } : { newDatasetName: name }, source)
        const datasetId = finished.datasetId
        const report = await call('imports.report', { importId: finished.importId })
        if (opts.json) {
          console.log(
            JSON.stringify({
              datasetId,
              importId: report.importId,
              status: report.status,
              imported: report.imported,
              alreadyPresent: report.alreadyPresent,
              duplicates: report.duplicateFiles,
              rejected: report.rejectedFiles,
              nothingNew: report.nothingNew
            })
          )
        } else {
          process.stderr.write('\n')
          console.log(`Dataset ${datasetId} "${name}": ${report.imported} imported, ${report.alreadyPresent} already there, ${report.duplicates} duplicates, ${report.rejected} rejected.`)
          if (report.nothingNew) console.log('Nothing new: every file was already in the dataset.')
          for (const d of report.duplicateFiles) console.log(`  duplicate  ${d.file}  = ${d.duplicateOf.path}`)
          for (const r of report.rejectedFiles) console.log(`  rejected   ${r.file}: ${r.reason}`)
        }
        if (report.status !== 'completed') process.exitCode = 1
      })
    })

  dataset
    .command('list')
    .description('list datasets')
    .addOption(dataDirOption())
    .option('--json', 'print JSON')
    .action(async (opts: CommonOptions) => {
      await withStudio(opts, async (call) => {
        const list = await call('datasets.list')
        if (opts.json) return console.log(JSON.stringify(list))
        if (!list.length) return console.log('No datasets yet: `finetune-studio dataset import DIR`.')
        for (const d of list) console.log(`${String(d.id).padStart(4)}  ${d.name}  ${d.imageCount} images, ${d.labelledCount} labelled, ${d.classCount} classes`)
      })
    })

  dataset
    .command('stats <id>')
    .description('class counts and splits of a dataset')
    .addOption(dataDirOption())
    .option('--json', 'print JSON')
    .action(async (id: string, opts: CommonOptions) => {
      await withStudio(opts, async (call) => {
        const stats = await call('datasets.stats', { datasetId: Number(id) })
        if (opts.json) return console.log(JSON.stringify(stats))
        console.log(`${stats.dataset.name}: ${stats.total} images, ${stats.labelled} labelled, ${stats.unlabelled} unlabelled, ${stats.rejected} rejected`)
        console.log(`splits: train ${stats.splits.train}, validation ${stats.splits.validation}, test ${stats.splits.test}`)
        for (const c of stats.classes) console.log(`  ${c.name.padEnd(24)} ${String(c.count).padStart(6)}  (train ${c.splits.train}, val ${c.splits.validation}, test ${c.splits.test})`)
      })
    })

  dataset
    .command('export <id> <dir>')
    .description('copy the labelled images into DIR/<class>/, one folder per class')
    .addOption(dataDirOption())
    .option('--json', 'print JSON')
    .action(async (id: string, dir: string, opts: CommonOptions) => {
      await withStudio(opts, async (_call, studio) => {
        if (fs.existsSync(dir) && fs.readdirSync(dir).length) throw new Error(`${path.resolve(dir)} is not empty; export into a new or empty folder`)
        const result = await exportDataset(studio.db, Number(id), dir)
        if (opts.json) return console.log(JSON.stringify(result))
        console.log(`Exported ${result.exported} images into ${path.resolve(dir)} (${result.classes} classes).`)
        for (const f of result.failed) console.log(`  failed  ${f.file}: ${f.reason}`)
      })
    })

  return dataset
}
