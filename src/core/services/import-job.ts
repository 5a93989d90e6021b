import { stat } from 'node:fs/promises'
import path from 'node:path'
import type { ImportProgress, ImportSource } from '../../shared/dto'
import { ApiError } from '../../shared/errors'
import { loadImageBytes } from '../data/decode'
import { prepareImage } from '../data/prepare-image'
import { idxImageToPng, readIdxDataset, readIdxImages, IdxFormatError } from '../data/idx'
import { parseLabelCsv, scanFolder, ScanError } from '../data/scan'
import { isImagePath, nonImageReason } from '../../shared/image-files'
import type { Database } from '../store/db'
import { insertImages, type NewImage } from '../store/images-repo'
import { createImport, insertImportIssues, updateImport, type ImportCounts, type ImportIssue, type ImportKind } from '../store/imports-repo'
import { ensureClasses } from '../store/labels-repo'

/** One file (or IDX record) to import: where it is, what it is called in reports, its label. */
interface ImportItem {
  name: string
  label: string | null
  read: () => Promise<Buffer | { ok: false; reason: string }>
}

export interface ImportPlan {
  kind: ImportKind
  items: ImportItem[]
  /** Entries refused before reading (not images, malformed CSV lines). */
  refused: { path: string; reason: string }[]
}

const BATCH = 64
const CONCURRENCY = 4
const PROGRESS_INTERVAL_MS = 250

async function planFolder(dir: string): Promise<ImportPlan> {
  const scan = await scanFolder(dir)
  return {
    kind: scan.layout,
    items: scan.files.map((f) => ({ name: f.path, label: f.label, read: () => loadImageBytes(f.path) })),
    refused: scan.skipped
  }
}

async function planCsv(csv: string): Promise<ImportPlan> {
  const parsed = await parseLabelCsv(csv)
  return {
    kind: 'csv',
    items: parsed.entries.map((e) => ({ name: e.path, label: e.label, read: () => loadImageBytes(e.path) })),
    refused: parsed.errors.map((e) => ({ path: `${csv}:${e.line}`, reason: `line ${e.line}: ${e.message}` }))
  }
}

async function planIdx(imagesPath: string, labelsPath?: string): Promise<ImportPlan> {
  const { images, labels } = labelsPath
    ? await readIdxDataset(imagesPath, labelsPath)
    : { images: await readIdxImages(imagesPath), labels: null }
  return {
    kind: 'idx',
    items: Array.from({ length: images.count }, (_, index) => ({
      name: `${imagesPath}#${index}`,
      label: labels ? String(labels.labels[index]) : null,
      read: () => idxImageToPng(images, index)
    })),
    refused: []
  }
}

/** Dropped files: the images import unlabelled; anything else is refused with the reason. */
async function planFiles(paths: string[]): Promise<ImportPlan> {
  const items: ImportItem[] = []
  const refused: ImportPlan['refused'] = []
  for (const file of [...new Set(paths.map((p) => path.resolve(p)))]) {
    const stats = await stat(file).catch(() => null)
    if (!stats) refused.push({ path: file, reason: 'file not found' })
    else if (stats.isDirectory()) refused.push({ path: file, reason: 'a folder: import folders one at a time, on their own' })
    else if (!isImagePath(file)) refused.push({ path: file, reason: nonImageReason(file) })
    else items.push({ name: file, label: null, read: () => loadImageBytes(file) })
  }
  return { kind: 'files', items, refused }
}

/** The folder holding every one of the paths. */
function commonFolder(paths: string[]): string {
  const split = paths.map((p) => path.dirname(path.resolve(p)).split(path.sep))
  const common: string[] = []
  for (let i = 0; split.every((parts) => i < parts.length && parts[i] === split[0][i]); i++) common.push(split[0][i])
  return common.join(path.sep) || path.sep
}

/** Turns a source into a plan, or throws an ApiError naming the path and what is wrong with it. */
export async function planImport(source: ImportSource): Promise<ImportPlan> {
  try {
    if (source.kind === 'folder') return await planFolder(source.path)
    if (source.kind === 'csv') return await planCsv(source.path)
    if (source.kind === 'files') return await planFiles(source.paths)
    return await planIdx(source.images, source.labels)
  } catch (error) {
    if (error instanceof ScanError || error instanceof IdxFormatError) {
      throw new ApiError({ code: 'invalid_input', message: error.message, fields: [{ path: 'source', message: error.message }] })
    }
    throw error
  }
}

export function describeSource(source: ImportSource): string {
  if (source.kind === 'idx') return [source.images, source.labels].filter(Boolean).join(' + ')
  if (source.kind === 'files') return commonFolder(source.paths)
  return path.resolve(source.path)
}

interface Processed {
  item: ImportItem
  outcome: { ok: true; hash: string; image: Omit<NewImage, 'classId' | 'importId'> } | { ok: false; reason: string }
}

export interface ImportJobOptions {
  db: Database
  datasetId: number
  source: ImportSource
  plan: ImportPlan
  thumbnailDir: string
  onProgress: (progress: ImportProgress) => void
  /** Runs after the last batch and before the final progress event (splits for new labels). */
  beforeFinish: () => Promise<void>
}

/**
 * Runs one import: reads every file once (hash, decode check, thumbnail), skips what the dataset
 * already has, reports duplicates and broken files, and commits in batches so that a studio
 * killed midway leaves a consistent database and a second run completes the rest.
 */
export class ImportJob {
  readonly importId: Promise<number>
  private cancelled = false
  private readonly counts: ImportCounts = { total: 0, imported: 0, alreadyPresent: 0, duplicates: 0, rejected: 0 }
  private readonly started = Date.now()
  private status: ImportProgress['status'] = 'running'
  private error: string | undefined
  private lastEmit = 0
  id = 0
  readonly done: Promise<ImportProgress>

  constructor(private readonly options: ImportJobOptions) {
    this.counts.total = options.plan.items.length + options.plan.refused.length
    this.importId = createImport(options.db, options.datasetId, describeSource(options.source), options.plan.kind).then((id) => (this.id = id))
    this.done = this.importId.then(() => this.run())
  }

  cancel(): void {
    this.cancelled = true
  }

  progress(): ImportProgress {
    const processed = this.counts.imported + this.counts.alreadyPresent + this.counts.duplicates + this.counts.rejected
    const seconds = Math.max((Date.now() - this.started) / 1000, 1e-3)
    const rate = processed / seconds
    return {
      importId: this.id,
      datasetId: this.options.datasetId,
      status: this.status,
      total: this.counts.total,
      processed,
      imported: this.counts.imported,
      alreadyPresent: this.counts.alreadyPresent,
      duplicates: this.counts.duplicates,
      rejected: this.counts.rejected,
      imagesPerSecond: Math.round(rate * 10) / 10,
      etaSeconds: this.status === 'running' && rate > 0 ? Math.round((this.counts.total - processed) / rate) : null,
      error: this.error
    }
  }

  private emit(force = false): void {
    const now = Date.now()
    if (!force && now - this.lastEmit < PROGRESS_INTERVAL_MS) return
    this.lastEmit = now
    this.options.onProgress(this.progress())
  }

  private async run(): Promise<ImportProgress> {
    const { db, datasetId, plan } = this.options
    try {
      const known = new Map<string, { id: number; path: string }>()
      for (const row of await db.all<{ id: number; content_hash: string; original_path: string }>(
        'SELECT id, content_hash, original_path FROM images WHERE dataset_id = ?',
        [datasetId]
      )) {
        known.set(row.content_hash, { id: row.id, path: row.original_path })
      }
      await db.transaction(async (tx) => {
        await insertImportIssues(tx, this.id, plan.refused.map((r) => ({ path: r.path, kind: 'rejected', reason: r.reason, duplicateOf: null })))
        this.counts.rejected += plan.refused.length
        await updateImport(tx, this.id, this.counts)
      })
      this.emit(true)
      // Decoding the next batch overlaps committing this one; commits stay in order.
      const batchAt = (start: number) => (start < plan.items.length ? this.processBatch(plan.items.slice(start, start + BATCH)) : null)
      let next = batchAt(0)
      for (let start = 0; next && !this.cancelled; start += BATCH) {
        const processed = await next
        next = this.cancelled ? null : batchAt(start + BATCH)
        await this.commitBatch(processed, known)
        this.emit()
      }
      await next
      this.status = this.cancelled ? 'cancelled' : 'completed'
    } catch (error) {
      this.status = 'failed'
      this.error = error instanceof Error ? error.message : String(error)
    }
    await updateImport(db, this.id, this.counts, { status: this.status as 'completed' | 'cancelled' | 'failed', error: this.error })
    await this.options.beforeFinish().catch(() => undefined)
    this.emit(true)
    return this.progress()
  }

  private async processBatch(items: ImportItem[]): Promise<Processed[]> {
    const results: Processed[] = new Array(items.length)
    let next = 0
    const worker = async () => {
      while (next < items.length) {
        const index = next++
        results[index] = { item: items[index], outcome: await this.processOne(items[index]) }
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
    return results
  }

  private async processOne(item: ImportItem): Promise<Processed['outcome']> {
    const bytes = await item.read()
    if (!Buffer.isBuffer(bytes)) return { ok: false, reason: bytes.reason }
    // One read, one decode: the thumbnail's decode is the check that the pixels are sound.
    const prepared = await prepareImage(bytes, { thumbnailDir: this.options.thumbnailDir })
    if (!prepared.ok) return { ok: false, reason: prepared.reason }
    const { info, hash } = prepared
    return {
      ok: true,
      hash,
      image: { contentHash: hash, path: item.name, byteSize: bytes.length, width: info.width, height: info.height, channels: info.channels, format: info.format }
    }
  }

  private async commitBatch(batch: Processed[], known: Map<string, { id: number; path: string }>): Promise<void> {
    const { db, datasetId } = this.options
    await db.transaction(async (tx) => {
      const fresh: { image: Omit<NewImage, 'classId' | 'importId'>; label: string | null }[] = []
      const issues: ImportIssue[] = []
      const pendingDuplicates: { path: string; hash: string }[] = []
      const seenInBatch = new Set<string>()
      let alreadyPresent = 0
      for (const { item, outcome } of batch) {
        if (!outcome.ok) {
          issues.push({ path: item.name, kind: 'rejected', reason: outcome.reason, duplicateOf: null })
          continue
        }
        const existing = known.get(outcome.hash)
        if (existing && existing.path === item.name) alreadyPresent++
        else if (existing) issues.push({ path: item.name, kind: 'duplicate', reason: `same content as ${existing.path}`, duplicateOf: existing.id })
        else if (seenInBatch.has(outcome.hash)) pendingDuplicates.push({ path: item.name, hash: outcome.hash })
        else {
          seenInBatch.add(outcome.hash)
          fresh.push({ image: outcome.image, label: item.label })
        }
      }
      const labels = new Set(fresh.map((f) => f.label).filter((l): l is string => l !== null))
      const classIds = await ensureClasses(tx, datasetId, labels)
      const ids = await insertImages(
        tx,
        datasetId,
        fresh.map((f) => ({ ...f.image, classId: f.label === null ? null : (classIds.get(f.label.trim()) ?? null), importId: this.id }))
      )
      fresh.forEach((f, index) => known.set(f.image.contentHash, { id: ids[index], path: f.image.path }))
      for (const dup of pendingDuplicates) {
        const original = known.get(dup.hash)
        if (original) issues.push({ path: dup.path, kind: 'duplicate', reason: `same content as ${original.path}`, duplicateOf: original.id })
      }
      await insertImportIssues(tx, this.id, issues)
      this.counts.imported += fresh.length
      this.counts.alreadyPresent += alreadyPresent
      this.counts.duplicates += issues.filter((i) => i.kind === 'duplicate').length
      this.counts.rejected += issues.filter((i) => i.kind === 'rejected').length
      await updateImport(tx, this.id, this.counts)
    })
  }
}
