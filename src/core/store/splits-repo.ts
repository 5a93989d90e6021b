import type { Split } from '../../shared/dto'
import { assignSplits, type SplitRatios } from '../data/split'
import type { Database } from './db'

/**
 * Gives every labelled image without a split its split, stratified by class and seeded by the
 * dataset's settings; existing assignments never move. With `reconfigure`, the user chose new
 * ratios or a new seed: the dataset is split again from scratch.
 */
export async function assignPendingSplits(db: Database, datasetId: number, reconfigure?: { ratios: SplitRatios; seed: number }): Promise<number> {
  return db.transaction(async (tx) => {
    if (reconfigure) {
      const { train, validation, test } = reconfigure.ratios
      await tx.run('UPDATE datasets SET split_train = ?, split_validation = ?, split_test = ?, split_seed = ? WHERE id = ?', [train, validation, test, reconfigure.seed, datasetId])
      await tx.run('UPDATE images SET split = NULL WHERE dataset_id = ?', [datasetId])
    }
    const settings = await tx.get<{ split_train: number; split_validation: number; split_test: number; split_seed: number }>(
      'SELECT split_train, split_validation, split_test, split_seed FROM datasets WHERE id = ?',
      [datasetId]
    )
    if (!settings) return 0
    // Only classes with unassigned images need looking at; labelling one image stays cheap at 100,000.
    const rows = await tx.all<{ id: number; class_id: number; content_hash: string; split: Split | null }>(
      `SELECT id, class_id, content_hash, split FROM images
       WHERE dataset_id = ? AND status = 'ok' AND class_id IN (
         SELECT DISTINCT class_id FROM images WHERE dataset_id = ? AND status = 'ok' AND class_id IS NOT NULL AND split IS NULL)`,
      [datasetId, datasetId]
    )
    if (!rows.length) return 0
    const existing = new Map<number, Split>()
    for (const row of rows) if (row.split) existing.set(row.id, row.split)
    const assigned = assignSplits({
      existing,
      items: rows.map((r) => ({ id: r.id, classKey: String(r.class_id), hash: r.content_hash })),
      ratios: { train: settings.split_train, validation: settings.split_validation, test: settings.split_test },
      seed: settings.split_seed
    })
    // UPDATE ... FROM joins once; a correlated subquery over the JSON would scan it per row.
    await tx.run('UPDATE images SET split = a.value ->> 1 FROM json_each(?) AS a WHERE images.id = a.value ->> 0', [JSON.stringify([...assigned])])
    return assigned.size
  })
}
