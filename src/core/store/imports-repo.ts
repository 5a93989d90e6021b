import type { ImportProgress, ImportReport } from '../../shared/dto'
import { ApiError } from '../../shared/errors'
import type { Database } from './db'

export type ImportKind = 'class-folders' | 'flat' | 'csv' | 'idx' | 'files'

interface ImportRow {
  id: number
  dataset_id: number
  source: string
  kind: ImportKind
  status: ImportProgress['status']
  total: number
  imported: number
  already_present: number
  duplicates: number
  rejected: number
  error: string | null
  started_at: string
  finished_at: string | null
}

export async function createImport(db: Database, datasetId: number, source: string, kind: ImportKind): Promise<number> {
  return (await db.run("INSERT INTO imports (dataset_id, source, kind, status) VALUES (?, ?, ?, 'running')", [datasetId, source, kind])).lastID
}

export interface ImportIssue {
  path: string
  kind: 'duplicate' | 'rejected'
  reason: string
  duplicateOf: number | null
}

export async function insertImportIssues(tx: Database, importId: number, issues: ImportIssue[]): Promise<void> {
  if (!issues.length) return
  await tx.run(
    `INSERT INTO import_issues (import_id, path, kind, reason, duplicate_of)
     SELECT ?, value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?)`,
    [importId, JSON.stringify(issues.map((i) => [i.path, i.kind, i.reason, i.duplicateOf]))]
  )
}

export interface ImportCounts {
  total: number
  imported: number
  alreadyPresent: number
  duplicates: number
  rejected: number
}

export async function updateImport(
  tx: Database,
  importId: number,
  counts: ImportCounts,
  finished?: { status: 'completed' | 'cancelled' | 'failed'; error?: string }
): Promise<void> {
  await tx.run(
    `UPDATE imports SET total = ?, imported = ?, already_present = ?, duplicates = ?, rejected = ?,
       status = coalesce(?, status), error = coalesce(?, error),
       finished_at = CASE WHEN ? IS NULL THEN finished_at ELSE strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END
     WHERE id = ?`,
    [counts.total, counts.imported, counts.alreadyPresent, counts.duplicates, counts.rejected, finished?.status ?? null, finished?.error ?? null, finished?.status ?? null, importId]
  )
}

/** Imports a dead studio left 'running' are over: the next import of the same source completes them. */
export async function failInterruptedImports(db: Database): Promise<number> {
  const { changes } = await db.run(
    "UPDATE imports SET status = 'failed', error = 'interrupted: the studio stopped during this import; import the same source again to complete it', finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE status = 'running'"
  )
  return changes
}

export async function importReport(db: Database, importId: number): Promise<ImportReport> {
  const row = await db.get<ImportRow>('SELECT * FROM imports WHERE id = ?', [importId])
  if (!row) throw new ApiError({ code: 'not_found', message: `No import with id ${importId}` })
  return reportOf(db, row)
}

/** A dataset's imports, newest first, each with its report (what it added, its duplicates and rejected files). */
export async function listImports(db: Database, datasetId: number, limit: number): Promise<ImportReport[]> {
  const rows = await db.all<ImportRow>('SELECT * FROM imports WHERE dataset_id = ? ORDER BY id DESC LIMIT ?', [datasetId, limit])
  const reports: ImportReport[] = []
  for (const row of rows) reports.push(await reportOf(db, row))
  return reports
}

async function reportOf(db: Database, row: ImportRow): Promise<ImportReport> {
  const importId = row.id
  const duplicateFiles = await db.all<{ path: string; image_id: number; image_path: string }>(
    `SELECT q.path, i.id AS image_id, i.original_path AS image_path FROM import_issues q JOIN images i ON i.id = q.duplicate_of
     WHERE q.import_id = ? AND q.kind = 'duplicate' ORDER BY q.id`,
    [importId]
  )
  const rejectedFiles = await db.all<{ path: string; reason: string }>(
    "SELECT path, reason FROM import_issues WHERE import_id = ? AND kind = 'rejected' ORDER BY id",
    [importId]
  )
  const processed = row.imported + row.already_present + row.duplicates + row.rejected
  return {
    importId: row.id,
    datasetId: row.dataset_id,
    status: row.status,
    source: row.source,
    layout: row.kind,
    total: row.total,
    processed,
    imported: row.imported,
    alreadyPresent: row.already_present,
    duplicates: row.duplicates,
    rejected: row.rejected,
    imagesPerSecond: 0,
    etaSeconds: null,
    error: row.error ?? undefined,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    duplicateFiles: duplicateFiles.map((d) => ({ file: d.path, duplicateOf: { imageId: d.image_id, path: d.image_path } })),
    rejectedFiles: rejectedFiles.map((r) => ({ file: r.path, reason: r.reason })),
    nothingNew: row.status === 'completed' && row.imported === 0 && row.already_present > 0
  }
}
