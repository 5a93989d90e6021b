import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Database } from './db'
import { migrate } from './migrations'
import { createDataset, datasetStats, listClasses } from './datasets-repo'
import { insertImages, pageImages, type NewImage } from './images-repo'
import { createClass, deleteClass, mergeClasses, redo, renameClass, setLabels, undo } from './labels-repo'

let dir: string
let db: Database

function fakeImages(n: number, prefix: string): NewImage[] {
  return Array.from({ length: n }, (_, i) => ({
    contentHash: `${prefix}-${i}-`.padEnd(64, 'x'),
    path: `/pictures/${prefix}/${String(i).padStart(4, '0')}.jpg`,
    byteSize: 1000 + i,
    width: 256,
    height: 256,
    channels: 3,
    format: 'jpeg',
    classId: null,
    importId: null
  }))
}

async function seed(name: string, n: number) {
  const dataset = await createDataset(db, name)
  const ids = await db.transaction((tx) => insertImages(tx, dataset.id, fakeImages(n, name)))
  return { dataset, ids }
}

async function labelOf(imageId: number): Promise<number | null> {
  return (await db.get<{ class_id: number | null }>('SELECT class_id FROM images WHERE id = ?', [imageId]))?.class_id ?? null
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-labels-'))
  db = await Database.open(path.join(dir, 'studio.sqlite'))
  await migrate(db)
})
afterEach(async () => {
  await db.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

describe('labelling', () => {
  it('labels in bulk, then undoes and redoes the action as a whole', async () => {
    const { dataset, ids } = await seed('pets', 10)
    const cat = await createClass(db, dataset.id, 'cat')
    const dog = await createClass(db, dataset.id, 'dog')
    expect((await setLabels(db, dataset.id, ids.slice(0, 6), cat.id)).changed).toBe(6)
    expect((await setLabels(db, dataset.id, ids.slice(4, 8), dog.id)).changed).toBe(4)
    expect(await labelOf(ids[4])).toBe(dog.id)

    const undone = await undo(db, dataset.id)
    expect(undone).toMatchObject({ changed: 4, description: 'Undo: Label 4 images as "dog"' })
    expect(await labelOf(ids[4])).toBe(cat.id)
    expect(await labelOf(ids[7])).toBeNull()

    expect((await redo(db, dataset.id)).changed).toBe(4)
    expect(await labelOf(ids[4])).toBe(dog.id)
    expect((await redo(db, dataset.id)).actionId).toBeNull()
  })

  it('forgets the redo stack when a new action is taken', async () => {
    const { dataset, ids } = await seed('a', 3)
    const c = await createClass(db, dataset.id, 'c')
    await setLabels(db, dataset.id, [ids[0]], c.id)
    await undo(db, dataset.id)
    await setLabels(db, dataset.id, [ids[1]], c.id)
    expect((await redo(db, dataset.id)).description).toBe('Nothing to redo')
    expect(await labelOf(ids[0])).toBeNull()
  })

  it('merges a class into another and undo restores both the class and its labels', async () => {
    const { dataset, ids } = await seed('m', 6)
    const kitten = await createClass(db, dataset.id, 'kitten')
    const cat = await createClass(db, dataset.id, 'cat')
    await setLabels(db, dataset.id, ids.slice(0, 3), kitten.id)
    await setLabels(db, dataset.id, ids.slice(3), cat.id)
    expect((await mergeClasses(db, dataset.id, kitten.id, cat.id)).changed).toBe(3)
    expect((await listClasses(db, dataset.id)).map((c) => [c.name, c.count])).toEqual([['cat', 6]])
    await undo(db, dataset.id)
    expect((await listClasses(db, dataset.id)).map((c) => [c.name, c.count])).toEqual([
      ['kitten', 3],
      ['cat', 3]
    ])
  })

  it('deletes a class leaving its images unlabelled, and undo brings it back', async () => {
    const { dataset, ids } = await seed('d', 4)
    const c = await createClass(db, dataset.id, 'gone')
    await setLabels(db, dataset.id, ids, c.id)
    await deleteClass(db, dataset.id, c.id)
    expect((await datasetStats(db, dataset.id)).unlabelled).toBe(4)
    await undo(db, dataset.id)
    expect((await datasetStats(db, dataset.id)).labelled).toBe(4)
  })

  it('refuses labels for images of another dataset, naming them, and changes nothing', async () => {
    const a = await seed('first', 3)
    const b = await seed('second', 3)
    const c = await createClass(db, a.dataset.id, 'x')
    await expect(setLabels(db, a.dataset.id, [a.ids[0], b.ids[1]], c.id)).rejects.toThrow(new RegExp(`image\\(s\\) ${b.ids[1]} belong to another dataset`))
    expect(await labelOf(a.ids[0])).toBeNull()
    const otherClass = await createClass(db, b.dataset.id, 'y')
    await expect(setLabels(db, a.dataset.id, [a.ids[0]], otherClass.id)).rejects.toThrow(/No class .* in dataset/)
  })

  it('keeps class names unique per dataset, renames, and refuses a clash', async () => {
    const { dataset } = await seed('n', 1)
    const c = await createClass(db, dataset.id, 'cat')
    await createClass(db, dataset.id, 'dog')
    await expect(createClass(db, dataset.id, 'cat')).rejects.toThrow(/already has a class named "cat"/)
    await expect(renameClass(db, dataset.id, c.id, 'dog')).rejects.toThrow(/already has a class named "dog"/)
    expect((await renameClass(db, dataset.id, c.id, 'tabby')).name).toBe('tabby')
  })
})

describe('paging', () => {
  it('pages with filters and sorting, and counts the whole filtered set', async () => {
    const { dataset, ids } = await seed('p', 50)
    const c = await createClass(db, dataset.id, 'c')
    await setLabels(db, dataset.id, ids.filter((_, i) => i % 2 === 0), c.id)
    const unlabelled = await pageImages(db, { datasetId: dataset.id, filter: { unlabelled: true }, sort: 'path', descending: true, offset: 0, limit: 10 })
    expect(unlabelled.total).toBe(25)
    expect(unlabelled.items).toHaveLength(10)
    expect(unlabelled.items[0].path).toBe('/pictures/p/0049.jpg')
    expect(unlabelled.items.every((i) => i.classId === null)).toBe(true)
    expect(unlabelled.nextCursor).toBe(10)
    const last = await pageImages(db, { datasetId: dataset.id, filter: { classId: c.id }, sort: 'imported', descending: false, offset: 20, limit: 10 })
    expect(last.items.map((i) => i.id)).toEqual(ids.filter((_, i) => i % 2 === 0).slice(20))
    expect(last.nextCursor).toBeNull()
  })
})
