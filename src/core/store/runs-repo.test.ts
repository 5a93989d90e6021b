import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Database } from './db'
import { migrate } from './migrations'
import { createRun, failOrphanedRuns, getRun, insertMetrics, metricSeries, setRunStatus } from './runs-repo'

let dir: string
let db: Database

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-runs-'))
  db = await Database.open(path.join(dir, 'studio.sqlite'))
  await migrate(db)
})
afterEach(async () => {
  await db.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

describe('runs and metrics', () => {
  it('records a run through its life with timestamps', async () => {
    const run = await createRun(db, { name: 'first', spec: { epochs: 2 } })
    expect(run).toMatchObject({ status: 'queued', spec: { epochs: 2 }, startedAt: null })
    await setRunStatus(db, run.id, 'running', { backend: 'wasm' })
    await setRunStatus(db, run.id, 'completed')
    const done = await getRun(db, run.id)
    expect(done).toMatchObject({ status: 'completed', backend: 'wasm' })
    expect(done.startedAt).not.toBeNull()
    expect(done.finishedAt).not.toBeNull()
  })

  it('stores metric batches exactly once, even when a batch is retried', async () => {
    const run = await createRun(db, { name: 'metrics', spec: {} })
    const batch = Array.from({ length: 500 }, (_, step) => ({ name: 'loss', step, epoch: Math.floor(step / 100), value: 1 / (step + 1), time: 1_700_000_000 + step / 10 }))
    expect(await insertMetrics(db, run.id, batch)).toBe(500)
    expect(await insertMetrics(db, run.id, batch.slice(400))).toBe(0)
    const series = await metricSeries(db, run.id, 'loss')
    expect(series).toHaveLength(500)
    expect(series[3]).toEqual({ step: 3, epoch: 0, value: 0.25, time: 1_700_000_000.3 })
  })

  it('marks runs a dead studio left behind as failed, with the reason', async () => {
    const run = await createRun(db, { name: 'orphan', spec: {} })
    await setRunStatus(db, run.id, 'running')
    expect(await failOrphanedRuns(db, 'the studio stopped while this run was training')).toBe(1)
    expect(await getRun(db, run.id)).toMatchObject({ status: 'failed', failureReason: 'the studio stopped while this run was training' })
  })
})
