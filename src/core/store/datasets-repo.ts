import type { ClassSummary, DatasetStats, DatasetSummary, SplitCounts } from '../../shared/dto'
import { ApiError } from '../../shared/errors'
import type { Database } from './db'

interface DatasetRow {
  id: number
  name: string
  created_at: string
  split_seed: number
  split_train: number
  split_validation: number
  split_test: number
  image_count: number
  labelled_count: number
  class_count: number
}

const SUMMARY_SQL = `
  SELECT d.*,
    (SELECT count(*) FROM images i WHERE i.dataset_id = d.id AND i.status = 'ok') AS image_count,
    (SELECT count(*) FROM images i WHERE i.dataset_id = d.id AND i.status = 'ok' AND i.class_id IS NOT NULL) AS labelled_count,
    (SELECT count(*) FROM classes c WHERE c.dataset_id = d.id AND c.deleted_at IS NULL) AS class_count
  FROM datasets d`

function toSummary(row: DatasetRow): DatasetSummary {
  return {
    id: row.id,
    name: row.name,
    createdAt: row.created_at,
    imageCount: row.image_count,
    labelledCount: row.labelled_count,
    classCount: row.class_count,
    splitRatios: { train: row.split_train, validation: row.split_validation, test: row.split_test },
    splitSeed: row.split_seed
  }
}

export async function listDatasets(db: Database): Promise<DatasetSummary[]> {
  return (await db.all<DatasetRow>(`${SUMMARY_SQL} ORDER BY d.name COLLATE NOCASE`)).map(toSummary)
}

export async function getDataset(db: Database, datasetId: number): Promise<DatasetSummary> {
  const row = await db.get<DatasetRow>(`${SUMMARY_SQL} WHERE d.id = ?`, [datasetId])
  if (!row) throw new ApiError({ code: 'not_found', message: `No dataset with id ${datasetId}` })
  return toSummary(row)
}

export async function findDatasetByName(db: Database, name: string): Promise<DatasetSummary | null> {
  const row = await db.get<DatasetRow>(`${SUMMARY_SQL} WHERE d.name = ?`, [name.trim()])
  return row ? toSummary(row) : null
}

export async function createDataset(db: Database, name: string): Promise<DatasetSummary> {
  if (await findDatasetByName(db, name)) {
    throw new ApiError({ code: 'conflict', message: `A dataset named "${name.trim()}" already exists`, fields: [{ path: 'name', message: 'already taken' }] })
  }
  const { lastID } = await db.run('INSERT INTO datasets (name) VALUES (?)', [name.trim()])
  return getDataset(db, lastID)
}

export async function renameDataset(db: Database, datasetId: number, name: string): Promise<DatasetSummary> {
  await getDataset(db, datasetId)
  const other = await findDatasetByName(db, name)
  if (other && other.id !== datasetId) {
    throw new ApiError({ code: 'conflict', message: `A dataset named "${name.trim()}" already exists`, fields: [{ path: 'name', message: 'already taken' }] })
  }
  await db.run('UPDATE datasets SET name = ? WHERE id = ?', [name.trim(), datasetId])
  return getDataset(db, datasetId)
}

export async function deleteDataset(db: Database, datasetId: number): Promise<boolean> {
  const used = await db.get<{ n: number }>('SELECT count(*) AS n FROM runs WHERE dataset_id = ?', [datasetId])
  return db.transaction(async (tx) => {
    if (used?.n) await tx.run('UPDATE runs SET dataset_id = NULL WHERE dataset_id = ?', [datasetId])
    // Snapshots keep runs reproducible, so they and their images outlive the dataset's listing.
    const snapshots = await tx.get<{ n: number }>('SELECT count(*) AS n FROM dataset_snapshots WHERE dataset_id = ?', [datasetId])
    if (snapshots?.n) {
      throw new ApiError({ code: 'conflict', message: `Dataset ${datasetId} was used by ${snapshots.n} run(s); delete those runs first` })
    }
    await tx.run('DELETE FROM label_changes WHERE action_id IN (SELECT id FROM label_actions WHERE dataset_id = ?)', [datasetId])
    await tx.run('DELETE FROM label_actions WHERE dataset_id = ?', [datasetId])
    await tx.run('DELETE FROM import_issues WHERE import_id IN (SELECT id FROM imports WHERE dataset_id = ?)', [datasetId])
    await tx.run('DELETE FROM images WHERE dataset_id = ?', [datasetId])
    await tx.run('DELETE FROM imports WHERE dataset_id = ?', [datasetId])
    await tx.run('DELETE FROM classes WHERE dataset_id = ?', [datasetId])
    const { changes } = await tx.run('DELETE FROM datasets WHERE id = ?', [datasetId])
    return changes > 0
  })
}

interface ClassRow {
  id: number
  name: string
  position: number
  count: number
  train: number
  validation: number
  test: number
}

export async function listClasses(db: Database, datasetId: number): Promise<ClassSummary[]> {
  const rows = await db.all<ClassRow>(
    `SELECT c.id, c.name, c.position,
       count(i.id) AS count,
       coalesce(sum(i.split = 'train'), 0) AS train,
       coalesce(sum(i.split = 'validation'), 0) AS validation,
       coalesce(sum(i.split = 'test'), 0) AS test
     FROM classes c LEFT JOIN images i ON i.class_id = c.id AND i.status = 'ok'
     WHERE c.dataset_id = ? AND c.deleted_at IS NULL
     GROUP BY c.id ORDER BY c.position, c.id`,
    [datasetId]
  )
  return rows.map((r) => ({ id: r.id, name: r.name, position: r.position, count: r.count, splits: { train: r.train, validation: r.validation, test: r.test } }))
}

export async function datasetStats(db: Database, datasetId: number): Promise<DatasetStats> {
  const dataset = await getDataset(db, datasetId)
  const classes = await listClasses(db, datasetId)
  const totals = await db.get<{ total: number; labelled: number; rejected: number; train: number; validation: number; test: number; unassigned: number }>(
    `SELECT
       coalesce(sum(status = 'ok'), 0) AS total,
       coalesce(sum(status = 'ok' AND class_id IS NOT NULL), 0) AS labelled,
       coalesce(sum(status = 'rejected'), 0) AS rejected,
       coalesce(sum(status = 'ok' AND split = 'train'), 0) AS train,
       coalesce(sum(status = 'ok' AND split = 'validation'), 0) AS validation,
       coalesce(sum(status = 'ok' AND split = 'test'), 0) AS test,
       coalesce(sum(status = 'ok' AND split IS NULL AND class_id IS NOT NULL), 0) AS unassigned
     FROM images WHERE dataset_id = ?`,
    [datasetId]
  )
  const duplicated = await db.get<{ n: number }>(
    `SELECT count(DISTINCT q.duplicate_of) AS n FROM import_issues q JOIN images i ON i.id = q.duplicate_of WHERE i.dataset_id = ?`,
    [datasetId]
  )
  const t = totals ?? { total: 0, labelled: 0, rejected: 0, train: 0, validation: 0, test: 0, unassigned: 0 }
  const splits: SplitCounts & { unassigned: number } = { train: t.train, validation: t.validation, test: t.test, unassigned: t.unassigned }
  return { dataset, classes, total: t.total, labelled: t.labelled, unlabelled: t.total - t.labelled, rejected: t.rejected, withDuplicates: duplicated?.n ?? 0, splits }
}
