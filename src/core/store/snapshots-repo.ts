import type { Split } from '../../shared/dto'
import { ApiError } from '../../shared/errors'
import type { Database } from './db'

export interface SnapshotItem {
  imageId: number
  path: string
  /** Index into the snapshot's class names. */
  label: number
  split: Split
}

export interface Snapshot {
  id: number
  datasetId: number
  classNames: string[]
  items: SnapshotItem[]
}

/**
 * Freezes what a run trains and validates on: every labelled, non-rejected image of the dataset
 * with its class and split, as they are now. Later relabelling does not change the snapshot.
 */
export async function createSnapshot(db: Database, datasetId: number): Promise<Snapshot> {
  return db.transaction(async (tx) => {
    const classes = await tx.all<{ id: number; name: string }>(
      `SELECT c.id, c.name FROM classes c WHERE c.dataset_id = ? AND c.deleted_at IS NULL
         AND EXISTS (SELECT 1 FROM images i WHERE i.class_id = c.id AND i.status = 'ok')
       ORDER BY c.position, c.id`,
      [datasetId]
    )
    if (classes.length < 2) {
      throw new ApiError({
        code: 'invalid_input',
        message: `Dataset ${datasetId} has ${classes.length === 0 ? 'no labelled images' : 'only one class with images'}: training needs at least two classes with labelled images`,
        fields: [{ path: 'datasetId', message: 'needs two or more labelled classes' }]
      })
    }
    const index = new Map(classes.map((c, i) => [c.id, i]))
    const rows = await tx.all<{ id: number; original_path: string; class_id: number; split: Split }>(
      "SELECT id, original_path, class_id, split FROM images WHERE dataset_id = ? AND status = 'ok' AND class_id IS NOT NULL AND split IS NOT NULL ORDER BY id",
      [datasetId]
    )
    const items = rows.map((r) => ({ imageId: r.id, path: r.original_path, label: index.get(r.class_id) as number, split: r.split }))
    if (!items.some((i) => i.split === 'train')) {
      throw new ApiError({ code: 'invalid_input', message: `Dataset ${datasetId} has no images in its training split`, fields: [{ path: 'datasetId', message: 'no training images' }] })
    }
    const classNames = classes.map((c) => c.name)
    const { lastID } = await tx.run('INSERT INTO dataset_snapshots (dataset_id, class_names, image_count) VALUES (?, ?, ?)', [datasetId, JSON.stringify(classNames), items.length])
    await tx.run(
      `INSERT INTO snapshot_images (snapshot_id, image_id, class_index, split)
       SELECT ?, value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)`,
      [lastID, JSON.stringify(items.map((i) => [i.imageId, i.label, i.split]))]
    )
    return { id: lastID, datasetId, classNames, items }
  })
}

export async function loadSnapshot(db: Database, snapshotId: number): Promise<Snapshot> {
  const head = await db.get<{ dataset_id: number; class_names: string }>('SELECT dataset_id, class_names FROM dataset_snapshots WHERE id = ?', [snapshotId])
  if (!head) throw new ApiError({ code: 'not_found', message: `No dataset snapshot ${snapshotId}` })
  const rows = await db.all<{ image_id: number; original_path: string; class_index: number; split: Split }>(
    'SELECT s.image_id, i.original_path, s.class_index, s.split FROM snapshot_images s JOIN images i ON i.id = s.image_id WHERE s.snapshot_id = ? ORDER BY s.image_id',
    [snapshotId]
  )
  return {
    id: snapshotId,
    datasetId: head.dataset_id,
    classNames: JSON.parse(head.class_names) as string[],
    items: rows.map((r) => ({ imageId: r.image_id, path: r.original_path, label: r.class_index, split: r.split }))
  }
}
