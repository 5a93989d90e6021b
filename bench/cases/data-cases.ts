import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { BenchCase } from '../bench-case'
import { Studio } from '../../src/core/services/studio'
import { Database } from '../../src/core/store/db'
import { migrate } from '../../src/core/store/migrations'
import { createDataset } from '../../src/core/store/datasets-repo'
import { insertImages, pageImages, type NewImage } from '../../src/core/store/images-repo'
import { ensureClasses } from '../../src/core/store/labels-repo'
import { createRun, insertMetrics, type MetricPoint } from '../../src/core/store/runs-repo'
import { writeImageFolder } from '../../test/generators/images'

function tempDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `fts-bench-${name}-`))
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

const IMPORT_IMAGES = 1200

export const importCase: BenchCase = {
  name: 'import-256-jpeg',
  description: `import ${IMPORT_IMAGES} 256x256 JPEGs (hash, decode, thumbnail, SQLite)`,
  target: { text: '>= 300 images/s', met: (r) => (r.imagesPerSec ?? 0) >= 300 },
  async run() {
    const dir = tempDir('import')
    try {
      await writeImageFolder(path.join(dir, 'images'), { classes: 6, perClass: IMPORT_IMAGES / 6, size: 256 })
      const studio = await Studio.open({ dataDir: path.join(dir, 'data'), transport: 'cli', heartbeatSeconds: 0 })
      const started = performance.now()
      const result = await studio.imports.runToEnd({ newDatasetName: 'bench' }, { kind: 'folder', path: path.join(dir, 'images') })
      const seconds = (performance.now() - started) / 1000
      await studio.close()
      if (result.imported !== IMPORT_IMAGES) throw new Error(`imported ${result.imported} of ${IMPORT_IMAGES}`)
      return { case: this.name, backend: 'sharp', imagesPerSec: Math.round(IMPORT_IMAGES / seconds), seconds: Math.round(seconds * 100) / 100 }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

const PAGE_DATASET = 100_000

export const pageCase: BenchCase = {
  name: 'page-100k',
  description: `a page of 200 images from a ${PAGE_DATASET.toLocaleString('en')}-image dataset, filtered and sorted`,
  target: { text: '< 20 ms per page (worst filter)', met: (r) => Number(r.worstMedianMs) < 20 },
  async run() {
    const dir = tempDir('page')
    const db = await Database.open(path.join(dir, 'studio.sqlite'))
    try {
      await migrate(db)
      const dataset = await createDataset(db, 'big')
      const classIds = [...(await db.transaction((tx) => ensureClasses(tx, dataset.id, Array.from({ length: 10 }, (_, i) => `class-${i}`)))).values()]
      for (let start = 0; start < PAGE_DATASET; start += 10_000) {
        const batch: NewImage[] = Array.from({ length: 10_000 }, (_, k) => {
          const i = start + k
          return {
            contentHash: i.toString(16).padStart(64, '0'),
            path: `/photos/${String(i % 997).padStart(4, '0')}/${String(i).padStart(6, '0')}.jpg`,
            byteSize: 20_000 + ((i * 7919) % 50_000),
            width: 256,
            height: 256,
            channels: 3,
            format: 'jpeg',
            // Two in three labelled, the rest waiting to be labelled.
            classId: i % 3 === 2 ? null : classIds[i % 10],
            importId: null
          }
        })
        await db.transaction((tx) => insertImages(tx, dataset.id, batch))
      }
      await db.run("UPDATE images SET split = CASE id % 10 WHEN 0 THEN 'test' WHEN 1 THEN 'validation' ELSE 'train' END WHERE class_id IS NOT NULL")
      await db.exec('ANALYZE')
      const queries = {
        unlabelledByPath: { filter: { unlabelled: true }, sort: 'path' as const, descending: false },
        classBySize: { filter: { classId: classIds[3] }, sort: 'size' as const, descending: true },
        validationImported: { filter: { split: 'validation' as const }, sort: 'imported' as const, descending: false },
        allDeepPage: { filter: {}, sort: 'imported' as const, descending: true }
      }
      const result: Record<string, number> = {}
      for (const [name, q] of Object.entries(queries)) {
        const times: number[] = []
        for (let r = 0; r < 15; r++) {
          const offset = name === 'allDeepPage' ? 90_000 : (r * 300) % 5_000
          const t = performance.now()
          const page = await pageImages(db, { datasetId: dataset.id, ...q, offset, limit: 200 })
          times.push(performance.now() - t)
          if (page.items.length !== 200) throw new Error(`${name}: got ${page.items.length} items`)
        }
        result[`${name}MedianMs`] = Math.round(median(times) * 100) / 100
      }
      return { case: this.name, backend: 'sqlite', ...result, worstMedianMs: Math.max(...Object.values(result)) }
    } finally {
      await db.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

const METRIC_ROWS = 300_000

export const metricsCase: BenchCase = {
  name: 'metrics-insert',
  description: `insert ${METRIC_ROWS.toLocaleString('en')} metric rows in batches of 5,000`,
  target: { text: '>= 100,000 rows/s', met: (r) => Number(r.rowsPerSec) >= 100_000 },
  async run() {
    const dir = tempDir('metrics')
    const db = await Database.open(path.join(dir, 'studio.sqlite'))
    try {
      await migrate(db)
      const run = await createRun(db, { name: 'bench', spec: {} })
      const names = ['loss', 'accuracy', 'learning_rate', 'images_per_sec', 'grad_norm']
      const started = performance.now()
      for (let step = 0; step < METRIC_ROWS / names.length; step += 1000) {
        const batch: MetricPoint[] = []
        for (let s = step; s < step + 1000; s++) for (const name of names) batch.push({ name, step: s, epoch: Math.floor(s / 500), value: Math.random(), time: Date.now() / 1000 })
        await db.transaction((tx) => insertMetrics(tx, run.id, batch))
      }
      const seconds = (performance.now() - started) / 1000
      const stored = (await db.get<{ n: number }>('SELECT count(*) AS n FROM metrics'))?.n
      if (stored !== METRIC_ROWS) throw new Error(`stored ${stored} of ${METRIC_ROWS} rows`)
      return { case: this.name, backend: 'sqlite', rowsPerSec: Math.round(METRIC_ROWS / seconds) }
    } finally {
      await db.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}
