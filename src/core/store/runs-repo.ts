import type { Database } from './db'
import { ApiError } from '../../shared/errors'

export type RunStatus = 'queued' | 'running' | 'paused' | 'completed' | 'failed' | 'cancelled'

export interface RunRecord {
  id: number
  name: string
  datasetId: number | null
  snapshotId: number | null
  parentRunId: number | null
  spec: unknown
  status: RunStatus
  failureReason: string | null
  backend: string | null
  notes: string
  createdAt: string
  startedAt: string | null
  finishedAt: string | null
}

interface RunRow {
  id: number
  name: string
  dataset_id: number | null
  snapshot_id: number | null
  parent_run_id: number | null
  spec: string
  status: RunStatus
  failure_reason: string | null
  backend: string | null
  notes: string
  created_at: string
  started_at: string | null
  finished_at: string | null
}

function toRecord(r: RunRow): RunRecord {
  return {
    id: r.id,
    name: r.name,
    datasetId: r.dataset_id,
    snapshotId: r.snapshot_id,
    parentRunId: r.parent_run_id,
    spec: JSON.parse(r.spec),
    status: r.status,
    failureReason: r.failure_reason,
    backend: r.backend,
    notes: r.notes,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at
  }
}

export async function createRun(
  db: Database,
  run: { name: string; spec: unknown; datasetId?: number | null; snapshotId?: number | null; parentRunId?: number | null; backend?: string | null }
): Promise<RunRecord> {
  const { lastID } = await db.run(
    "INSERT INTO runs (name, spec, dataset_id, snapshot_id, parent_run_id, backend, status) VALUES (?, ?, ?, ?, ?, ?, 'queued')",
    [run.name, JSON.stringify(run.spec), run.datasetId ?? null, run.snapshotId ?? null, run.parentRunId ?? null, run.backend ?? null]
  )
  return getRun(db, lastID)
}

export async function getRun(db: Database, runId: number): Promise<RunRecord> {
  const row = await db.get<RunRow>('SELECT * FROM runs WHERE id = ?', [runId])
  if (!row) throw new ApiError({ code: 'not_found', message: `No run with id ${runId}` })
  return toRecord(row)
}

export async function listRuns(db: Database): Promise<RunRecord[]> {
  return (await db.all<RunRow>('SELECT * FROM runs ORDER BY id DESC')).map(toRecord)
}

const NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

export async function setRunStatus(db: Database, runId: number, status: RunStatus, extra: { failureReason?: string; backend?: string } = {}): Promise<void> {
  const started = status === 'running' ? `, started_at = coalesce(started_at, ${NOW})` : ''
  const finished = ['completed', 'failed', 'cancelled'].includes(status) ? `, finished_at = ${NOW}` : ''
  await db.run(`UPDATE runs SET status = ?, failure_reason = ?, backend = coalesce(?, backend)${started}${finished} WHERE id = ?`, [
    status,
    extra.failureReason ?? null,
    extra.backend ?? null,
    runId
  ])
}

/** Runs left 'running' by a studio that died are not running any more: say so, with the reason. */
export async function failOrphanedRuns(db: Database, reason: string): Promise<number> {
  const { changes } = await db.run(`UPDATE runs SET status = 'failed', failure_reason = ?, finished_at = ${NOW} WHERE status IN ('running', 'queued', 'paused')`, [reason])
  return changes
}

export interface MetricPoint {
  name: string
  step: number
  epoch: number
  value: number
  /** Seconds since the epoch (Unix time), fractional. */
  time: number
}

/**
 * Writes a batch of metric points in one statement: the rows travel as one JSON array and
 * SQLite unpacks them, which is far faster than a statement per row. A point already stored for
 * the same (run, name, step) is kept as it was, so a retried batch never duplicates.
 */
export async function insertMetrics(db: Database, runId: number, points: MetricPoint[]): Promise<number> {
  if (!points.length) return 0
  const rows = JSON.stringify(points.map((p) => [p.name, p.step, p.epoch, p.value, p.time]))
  const { changes } = await db.run(
    `INSERT INTO metrics (run_id, name, step, epoch, value, time)
     SELECT ?, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(?)
     WHERE true ON CONFLICT (run_id, name, step) DO NOTHING`,
    [runId, rows]
  )
  return changes
}

export async function metricSeries(db: Database, runId: number, name: string): Promise<{ step: number; epoch: number; value: number; time: number }[]> {
  return db.all('SELECT step, epoch, value, time FROM metrics WHERE run_id = ? AND name = ? ORDER BY step', [runId, name])
}
