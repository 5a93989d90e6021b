import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Database } from './db'
import { migrate } from './migrations'
import { createDataset } from './datasets-repo'
import { insertImages } from './images-repo'
import { createClass, setLabels } from './labels-repo'
import { assignPendingSplits } from './splits-repo'
import { createSnapshot, loadSnapshot } from './snapshots-repo'
import { MetricWriter } from './metric-writer'
import { createRun, metricSeries } from './runs-repo'

let dir: string
let db: Database

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-snap-'))
  db = await Database.open(path.join(dir, 'studio.sqlite'))
  await migrate(db)
})
afterEach(async () => {
  await db.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

async function labelledDataset(perClass: number, classes: string[]) {
  const dataset = await createDataset(db, 'd')
  const n = perClass * classes.length
  const ids = await db.transaction((tx) =>
    insertImages(
      tx,
      dataset.id,
      Array.from({ length: n }, (_, i) => ({ contentHash: `h${i}-`.padEnd(64, 'x'), path: `/img/${i}.jpg`, byteSize: 1, width: 8, height: 8, channels: 3, format: 'jpeg', classId: null, importId: null }))
    )
  )
  for (const [k, name] of classes.entries()) {
    const c = await createClass(db, dataset.id, name)
    await setLabels(db, dataset.id, ids.slice(k * perClass, (k + 1) * perClass), c.id)
  }
  await assignPendingSplits(db, dataset.id)
  return { dataset, ids }
}

describe('dataset snapshots', () => {
  it('freeze the labels and splits a run trains on, unaffected by later relabelling', async () => {
    const { dataset, ids } = await labelledDataset(10, ['cat', 'dog'])
    const snapshot = await createSnapshot(db, dataset.id)
    expect(snapshot.classNames).toEqual(['cat', 'dog'])
    expect(snapshot.items).toHaveLength(20)
    expect(snapshot.items.filter((i) => i.label === 1)).toHaveLength(10)
    expect(snapshot.items.filter((i) => i.split === 'train').length).toBe(16)

    const dog = (await db.get<{ id: number }>("SELECT id FROM classes WHERE name = 'dog'"))!.id
    await setLabels(db, dataset.id, ids.slice(0, 10), dog)
    const again = await loadSnapshot(db, snapshot.id)
    expect(again.items.filter((i) => i.label === 0)).toHaveLength(10)
  })

  it('refuses a dataset with fewer than two labelled classes', async () => {
    const { dataset } = await labelledDataset(5, ['only'])
    await expect(createSnapshot(db, dataset.id)).rejects.toThrow(/only one class with images: training needs at least two/)
    const empty = await createDataset(db, 'empty')
    await expect(createSnapshot(db, empty.id)).rejects.toThrow(/no labelled images/)
  })
})

describe('the metric writer', () => {
  it('writes buffered points in batches and flushes the rest on close', async () => {
    const run = await createRun(db, { name: 'r', spec: {} })
    const writer = new MetricWriter(db, run.id, { maxPoints: 100, maxDelayMs: 10_000 })
    writer.add(Array.from({ length: 250 }, (_, step) => ({ name: 'loss', step, epoch: 0, value: step, time: step })))
    await writer.flush()
    writer.add([{ name: 'loss', step: 250, epoch: 1, value: 250, time: 250 }])
    await writer.close()
    const series = await metricSeries(db, run.id, 'loss')
    expect(series.map((p) => p.step)).toEqual(Array.from({ length: 251 }, (_, i) => i))
  })
})
