import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Studio } from './studio'
import type { ImportProgress } from '../../shared/dto'
import type { MethodInput, MethodName, MethodResult } from '../../shared/api'
import { writeImageFolder, writeTruncatedJpeg, writeZeroByteFile, writeTextAsJpg, writeDuplicate } from '../../../test/generators/images'
import { encodeIdxImages, encodeIdxLabels } from '../data/idx'

let root: string
let studio: Studio

async function call<M extends MethodName>(method: M, input?: MethodInput<M>): Promise<MethodResult<M>> {
  const outcome = await studio.call(method, input)
  if (!outcome.ok) throw new Error(`${outcome.error.code}: ${outcome.error.message}`)
  return outcome.result as MethodResult<M>
}

/** Starts an import through the contract and waits for its last progress event. */
async function importAndWait(input: MethodInput<'imports.start'>): Promise<{ final: ImportProgress; events: ImportProgress[] }> {
  const events: ImportProgress[] = []
  let resolveDone: (p: ImportProgress) => void = () => undefined
  const done = new Promise<ImportProgress>((resolve) => (resolveDone = resolve))
  const off = studio.onEvent((e) => {
    if (e.event !== 'import.progress') return
    events.push(e.payload)
    if (e.payload.status !== 'running') resolveDone(e.payload)
  })
  const started = await call('imports.start', input)
  expect(started.status).toBe('running')
  const final = await done
  off()
  return { final, events }
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-import-'))
  studio = await Studio.open({ dataDir: path.join(root, 'data'), transport: 'cli', heartbeatSeconds: 0 })
})
afterAll(async () => {
  await studio.close()
  fs.rmSync(root, { recursive: true, force: true })
})

describe('importing a class-folder tree', () => {
  let folder: string
  let datasetId: number
  let importId: number

  beforeAll(async () => {
    folder = path.join(root, 'shapes')
    const images = await writeImageFolder(folder, { classes: ['circle', 'square', 'stripes'], perClass: 6, size: 48 })
    await writeTruncatedJpeg(path.join(folder, 'circle', 'truncated.jpg'))
    await writeZeroByteFile(path.join(folder, 'square', 'empty.jpg'))
    await writeTextAsJpg(path.join(folder, 'stripes', 'notes.jpg'))
    fs.writeFileSync(path.join(folder, 'README.txt'), 'not an image')
    await writeDuplicate(images[0].path, path.join(folder, 'square', 'copy-of-circle.jpg'))
    const { final } = await importAndWait({ newDatasetName: 'shapes', source: { kind: 'folder', path: folder } })
    datasetId = final.datasetId
    importId = final.importId
  })

  it('imports every good image with its class and reports the rest with reasons', async () => {
    const report = await call('imports.report', { importId })
    expect(report).toMatchObject({ status: 'completed', imported: 18, duplicates: 1, alreadyPresent: 0, nothingNew: false })
    expect(report.duplicateFiles).toEqual([
      { file: path.join(folder, 'square', 'copy-of-circle.jpg'), duplicateOf: { imageId: expect.any(Number), path: path.join(folder, 'circle', '0000.jpg') } }
    ])
    const reasons = Object.fromEntries(report.rejectedFiles.map((r) => [path.relative(folder, r.file), r.reason]))
    expect(Object.keys(reasons).sort()).toEqual(['README.txt', 'circle/truncated.jpg', 'square/empty.jpg', 'stripes/notes.jpg'])
    expect(reasons['square/empty.jpg']).toMatch(/empty file/)
    expect(reasons['stripes/notes.jpg']).toMatch(/not an image/)
    expect(reasons['circle/truncated.jpg']).toMatch(/truncated|corrupt/i)
  })

  it('labels from the folder names and splits every labelled image, stratified', async () => {
    const stats = await call('datasets.stats', { datasetId })
    expect(stats.classes.map((c) => [c.name, c.count])).toEqual([
      ['circle', 6],
      ['square', 6],
      ['stripes', 6]
    ])
    expect(stats.splits.unassigned).toBe(0)
    expect(stats.splits.train + stats.splits.validation + stats.splits.test).toBe(18)
    for (const c of stats.classes) expect(c.splits.train).toBeGreaterThanOrEqual(4)
    expect(stats.withDuplicates).toBe(1)
  })

  it('makes a thumbnail for each image, served by image id', async () => {
    const page = await call('images.page', { datasetId, limit: 5 })
    const thumb = await studio.thumbnail(page.items[0].id)
    expect(thumb).not.toBeNull()
    expect(fs.statSync(thumb as string).size).toBeGreaterThan(100)
    expect(await studio.thumbnail(999_999)).toBeNull()
  })

  it('adds nothing when the same folder is imported again, and says so', async () => {
    const { final } = await importAndWait({ datasetId, source: { kind: 'folder', path: folder } })
    const report = await call('imports.report', { importId: final.importId })
    expect(report).toMatchObject({ imported: 0, alreadyPresent: 18, nothingNew: true })
    expect((await call('datasets.stats', { datasetId })).total).toBe(18)
  })
})

describe('other sources and bad input', () => {
  it('imports a flat folder as unlabelled images that get no split', async () => {
    const flat = path.join(root, 'flat')
    await writeImageFolder(flat, { classes: 2, perClass: 3, layout: 'flat', size: 32 })
    const { final } = await importAndWait({ newDatasetName: 'flat', source: { kind: 'folder', path: flat } })
    const stats = await call('datasets.stats', { datasetId: final.datasetId })
    expect(stats).toMatchObject({ total: 6, labelled: 0, unlabelled: 6, classes: [] })
    expect(stats.splits).toEqual({ train: 0, validation: 0, test: 0, unassigned: 0 })
  })

  it('imports MNIST-style IDX files with their labels', async () => {
    const count = 12
    const pixels = new Uint8Array(count * 28 * 28).map((_, i) => (i * 7) % 256)
    fs.writeFileSync(path.join(root, 'train-images-idx3-ubyte'), encodeIdxImages({ count, rows: 28, cols: 28, pixels }))
    fs.writeFileSync(path.join(root, 'train-labels-idx1-ubyte'), encodeIdxLabels({ count, labels: new Uint8Array(count).map((_, i) => i % 3) }))
    const { final } = await importAndWait({
      newDatasetName: 'digits',
      source: { kind: 'idx', images: path.join(root, 'train-images-idx3-ubyte'), labels: path.join(root, 'train-labels-idx1-ubyte') }
    })
    expect(final).toMatchObject({ status: 'completed', imported: 12 })
    const stats = await call('datasets.stats', { datasetId: final.datasetId })
    expect(stats.classes.map((c) => [c.name, c.count])).toEqual([
      ['0', 4],
      ['1', 4],
      ['2', 4]
    ])
  })

  it('imports single files (what a drop on the desktop app gives): images unlabelled, the rest refused with the reason', async () => {
    const folder = path.join(root, 'dropped')
    const images = await writeImageFolder(folder, { classes: 1, perClass: 2, size: 32, layout: 'flat', seed: 5 })
    const notes = path.join(folder, 'notes.txt')
    fs.writeFileSync(notes, 'not an image')
    const heic = path.join(folder, 'IMG_0001.HEIC')
    fs.writeFileSync(heic, 'pretend photo')
    const inner = path.join(folder, 'inner')
    fs.mkdirSync(inner)
    const paths = [images[0].path, images[1].path, notes, heic, inner, path.join(folder, 'gone.jpg')]
    const { final } = await importAndWait({ newDatasetName: 'dropped files', source: { kind: 'files', paths } })
    expect(final).toMatchObject({ status: 'completed', total: 6, imported: 2, rejected: 4 })
    const report = await call('imports.report', { importId: final.importId })
    expect(report).toMatchObject({ source: folder, layout: 'files' })
    expect(Object.fromEntries(report.rejectedFiles.map((r) => [path.basename(r.file), r.reason]))).toEqual({
      'notes.txt': 'not an image (.txt file)',
      'IMG_0001.HEIC': 'HEIC photos are not supported: convert them to JPEG',
      inner: 'a folder: import folders one at a time, on their own',
      'gone.jpg': 'file not found'
    })
    expect(await call('datasets.stats', { datasetId: final.datasetId })).toMatchObject({ total: 2, unlabelled: 2 })
    expect(await studio.call('imports.start', { newDatasetName: 'none', source: { kind: 'files', paths: [] } })).toMatchObject({
      ok: false,
      error: { code: 'invalid_input', fields: [{ path: 'source.paths', message: 'give at least one file' }] }
    })
  })

  it('refuses a folder that does not exist, naming it, and creates no dataset', async () => {
    const before = (await call('datasets.list')).length
    const outcome = await studio.call('imports.start', { newDatasetName: 'ghost', source: { kind: 'folder', path: path.join(root, 'nope') } })
    expect(outcome.ok).toBe(false)
    if (!outcome.ok) expect(outcome.error.message).toContain(path.join(root, 'nope'))
    expect((await call('datasets.list')).length).toBe(before)
  })

  it('refuses IDX files with the wrong magic number, naming the file', async () => {
    const bad = path.join(root, 'bad-images-idx3-ubyte')
    fs.writeFileSync(bad, Buffer.alloc(64))
    const outcome = await studio.call('imports.start', { newDatasetName: 'bad idx', source: { kind: 'idx', images: bad } })
    expect(outcome).toMatchObject({ ok: false, error: { code: 'invalid_input' } })
    if (!outcome.ok) expect(outcome.error.message).toMatch(/bad-images-idx3-ubyte.*magic/)
  })

  it('refuses an empty class name and one that is too long', async () => {
    const datasetId = (await call('datasets.create', { name: 'names' })).id
    for (const name of ['   ', 'x'.repeat(101)]) {
      const outcome = await studio.call('classes.create', { datasetId, name })
      expect(outcome).toMatchObject({ ok: false, error: { code: 'invalid_input', fields: [{ path: 'name' }] } })
    }
  })
})

describe('importing a CSV of file,label', () => {
  it('imports the listed files with their labels and reports malformed lines by number', async () => {
    const folder = path.join(root, 'csv-images')
    const images = await writeImageFolder(folder, { classes: 2, perClass: 3, layout: 'flat', size: 32 })
    const csv = path.join(folder, 'labels.csv')
    const lines = ['file,label', ...images.map((i) => `${path.basename(i.path)},${i.label === 'class-0' ? 'cat' : 'dog'}`), 'missing.jpg,cat', 'only-one-field']
    fs.writeFileSync(csv, lines.join('\n') + '\n')
    const { final } = await importAndWait({ newDatasetName: 'from csv', source: { kind: 'csv', path: csv } })
    expect(final).toMatchObject({ status: 'completed', imported: 6, rejected: 2 })
    const report = await call('imports.report', { importId: final.importId })
    expect(report.rejectedFiles.map((r) => r.reason)).toEqual([expect.stringMatching(/^line 8: .*missing\.jpg/), expect.stringMatching(/^line 9: /)])
    const stats = await call('datasets.stats', { datasetId: final.datasetId })
    expect(stats.classes.map((c) => [c.name, c.count])).toEqual([
      ['cat', 3],
      ['dog', 3]
    ])
  })
})

describe('cancelling an import', () => {
  it('stops after the batch in flight, keeps what was committed, and a second import completes it', async () => {
    const folder = path.join(root, 'many')
    await writeImageFolder(folder, { classes: 2, perClass: 150, size: 32 })
    const events: ImportProgress[] = []
    let cancelled: Promise<unknown> | null = null
    const off = studio.onEvent((e) => {
      if (e.event !== 'import.progress') return
      events.push(e.payload)
      if (!cancelled && e.payload.imported > 0) cancelled = studio.call('imports.cancel', { importId: e.payload.importId })
    })
    const started = await call('imports.start', { newDatasetName: 'many', source: { kind: 'folder', path: folder } })
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (events.some((p) => p.status !== 'running')) {
          clearInterval(timer)
          resolve()
        }
      }, 20)
    })
    off()
    expect(await cancelled).toEqual({ ok: true, result: { cancelled: true } })
    const report = await call('imports.report', { importId: started.importId })
    expect(report.status).toBe('cancelled')
    expect(report.imported).toBeLessThan(300)
    const stats = await call('datasets.stats', { datasetId: started.datasetId })
    expect(stats.total).toBe(report.imported)

    const { final } = await importAndWait({ datasetId: started.datasetId, source: { kind: 'folder', path: folder } })
    expect(final).toMatchObject({ status: 'completed', alreadyPresent: report.imported, imported: 300 - report.imported })
  })
})

describe('imports.list: a dataset\'s imports and their reports, read back from the database', () => {
  it('lists them newest first with their duplicates and rejected files, and still does after the studio is reopened', async () => {
    const dataDir = path.join(root, 'list-data')
    const folder = path.join(root, 'list-images')
    const images = await writeImageFolder(folder, { classes: 2, perClass: 3, size: 32, seed: 4 })
    await writeTruncatedJpeg(path.join(folder, 'class-0', 'broken.jpg'), 32)
    await writeDuplicate(images[0].path, path.join(folder, 'class-1', 'copy.jpg'))
    fs.writeFileSync(path.join(folder, 'notes.txt'), 'not an image')

    const first = await Studio.open({ dataDir, transport: 'cli', heartbeatSeconds: 0 })
    let datasetId: number
    let emptyId: number
    try {
      const run = (source: string, target: { newDatasetName: string } | { datasetId: number }) => first.imports.runToEnd(target, { kind: 'folder', path: source })
      const earlier = await run(folder, { newDatasetName: 'listed' })
      datasetId = earlier.datasetId
      await run(folder, { datasetId }) // the same folder again: nothing new
      const other = await first.call('datasets.create', { name: 'no imports' })
      if (!other.ok) throw new Error(other.error.message)
      emptyId = (other.result as MethodResult<'datasets.create'>).id
    } finally {
      await first.close()
    }

    // A new studio on the same SQLite file: the reports come from the imports/import_issues tables.
    const reopened = await Studio.open({ dataDir, transport: 'cli', heartbeatSeconds: 0 })
    try {
      const listed = await reopened.call('imports.list', { datasetId })
      if (!listed.ok) throw new Error(listed.error.message)
      const reports = listed.result as MethodResult<'imports.list'>
      expect(reports.map((r) => [r.status, r.imported, r.alreadyPresent, r.nothingNew])).toEqual([
        ['completed', 0, 6, true],
        ['completed', 6, 0, false]
      ])
      expect(reports[0].importId).toBeGreaterThan(reports[1].importId)
      const original = reports[1]
      expect(original).toMatchObject({ datasetId, source: folder, layout: 'class-folders', total: 9, duplicates: 1, rejected: 2 })
      expect(original.finishedAt).not.toBeNull()
      expect(Date.parse(original.startedAt)).toBeLessThanOrEqual(Date.parse(original.finishedAt as string))
      expect(original.duplicateFiles).toEqual([
        { file: path.join(folder, 'class-1', 'copy.jpg'), duplicateOf: { imageId: expect.any(Number), path: images[0].path } }
      ])
      const reasons = Object.fromEntries(original.rejectedFiles.map((r) => [path.relative(folder, r.file), r.reason]))
      expect(reasons).toEqual({ 'class-0/broken.jpg': expect.stringMatching(/truncated|corrupt/i), 'notes.txt': 'not an image (.txt file)' })
      // The same as imports.report says for each.
      const single = await reopened.call('imports.report', { importId: original.importId })
      expect(single).toEqual({ ok: true, result: original })

      const limited = await reopened.call('imports.list', { datasetId, limit: 1 })
      expect(limited.ok && (limited.result as MethodResult<'imports.list'>).map((r) => r.importId)).toEqual([reports[0].importId])
      // Validated like every call: an unknown dataset, a bad limit, an unknown field.
      expect(await reopened.call('imports.list', { datasetId: 9999 })).toMatchObject({ ok: false, error: { code: 'not_found', message: 'No dataset with id 9999' } })
      expect(await reopened.call('imports.list', { datasetId, limit: 0 })).toMatchObject({ ok: false, error: { code: 'invalid_input', fields: [{ path: 'limit' }] } })
      expect(await reopened.call('imports.list', { datasetId, sort: 'old' })).toMatchObject({ ok: false, error: { code: 'invalid_input', fields: [{ path: 'sort', message: 'unknown field' }] } })
      expect(await reopened.call('imports.list', { datasetId: emptyId })).toEqual({ ok: true, result: [] })
    } finally {
      await reopened.close()
    }
  })
})
