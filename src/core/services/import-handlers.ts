import path from 'node:path'
import type { ImportProgress, ImportSource } from '../../shared/dto'
import type { Database } from '../store/db'
import { createDataset, getDataset } from '../store/datasets-repo'
import { importReport, listImports } from '../store/imports-repo'
import type { ServiceHandlers } from './dispatch'
import { ImportJob, planImport } from './import-job'

export type ImportTarget = { datasetId: number } | { newDatasetName: string }

export interface ImportContext {
  db: Database
  thumbnailDir: string
  onProgress(progress: ImportProgress): void
  /** After an import's last batch: labels may have arrived with the images. */
  onFinished(datasetId: number): Promise<void>
}

/** Imports run in the background, one job per call; progress arrives as events. */
export class ImportRunner {
  private readonly jobs = new Map<number, ImportJob>()

  constructor(private readonly ctx: ImportContext) {}

  handlers(): Pick<ServiceHandlers, 'imports.start' | 'imports.cancel' | 'imports.report' | 'imports.list'> {
    return {
      'imports.start': async ({ datasetId, newDatasetName, source }) => {
        const { job } = await this.start(datasetId !== undefined ? { datasetId } : { newDatasetName: newDatasetName as string }, source)
        return job.progress()
      },
      'imports.cancel': async ({ importId }) => {
        const job = this.jobs.get(importId)
        if (!job) {
          await importReport(this.ctx.db, importId) // not_found for an unknown id
          return { cancelled: false }
        }
        job.cancel()
        await job.done
        return { cancelled: true }
      },
      'imports.report': ({ importId }) => importReport(this.ctx.db, importId),
      'imports.list': async ({ datasetId, limit }) => {
        await getDataset(this.ctx.db, datasetId) // not_found for an unknown dataset
        return listImports(this.ctx.db, datasetId, limit)
      }
    }
  }

  /**
   * Plans the import first (a bad source is refused before anything is written), then finds or
   * creates the dataset and starts the job. `settled` resolves once the job ended, its dataset
   * caught up and the last progress event went out.
   */
  async start(target: ImportTarget, source: ImportSource): Promise<{ job: ImportJob; settled: Promise<ImportProgress> }> {
    const plan = await planImport(source)
    const datasetId = 'datasetId' in target ? (await getDataset(this.ctx.db, target.datasetId)).id : (await createDataset(this.ctx.db, target.newDatasetName)).id
    const job = new ImportJob({
      db: this.ctx.db,
      datasetId,
      source,
      plan,
      thumbnailDir: this.ctx.thumbnailDir,
      onProgress: (p) => this.ctx.onProgress(p),
      beforeFinish: () => this.ctx.onFinished(datasetId)
    })
    const id = await job.importId
    this.jobs.set(id, job)
    const settled = job.done.finally(() => this.jobs.delete(id))
    return { job, settled }
  }

  /** For the CLI: run an import to the end. */
  async runToEnd(target: ImportTarget, source: ImportSource): Promise<ImportProgress> {
    return (await this.start(target, source)).settled
  }

  async cancelAll(): Promise<void> {
    const running = [...this.jobs.values()]
    running.forEach((job) => job.cancel())
    await Promise.all(running.map((job) => job.done))
  }
}

export function thumbnailDirFor(dataDir: string): string {
  return path.join(dataDir, 'thumbnails')
}
