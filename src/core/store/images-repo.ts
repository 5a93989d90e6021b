import type { ImageItem, ImagePage, Split } from '../../shared/dto'
import { ApiError } from '../../shared/errors'
import type { Database } from './db'

export interface ImageFilter {
  classId?: number
  unlabelled?: boolean
  split?: Split
  status?: 'ok' | 'rejected'
  duplicates?: boolean
}

export interface PageQuery {
  datasetId: number
  filter: ImageFilter
  sort: 'imported' | 'path' | 'size'
  descending: boolean
  offset: number
  limit: number
}

const SORT_COLUMNS = { imported: 'i.id', path: 'i.original_path', size: 'i.byte_size' } as const

function whereClause(datasetId: number, filter: ImageFilter): { sql: string; params: unknown[] } {
  const parts = ['i.dataset_id = ?']
  const params: unknown[] = [datasetId]
  // Rejected images are hidden unless asked for: they never train.
  parts.push('i.status = ?')
  params.push(filter.status ?? 'ok')
  if (filter.classId !== undefined) {
    parts.push('i.class_id = ?')
    params.push(filter.classId)
  }
  if (filter.unlabelled) parts.push('i.class_id IS NULL')
  if (filter.split) {
    parts.push('i.split = ?')
    params.push(filter.split)
  }
  if (filter.duplicates) parts.push('EXISTS (SELECT 1 FROM import_issues q WHERE q.duplicate_of = i.id)')
  return { sql: parts.join(' AND '), params }
}

interface ImageRow {
  id: number
  original_path: string
  width: number
  height: number
  byte_size: number
  class_id: number | null
  split: Split | null
  status: 'ok' | 'rejected'
  duplicates: number
}

export async function pageImages(db: Database, query: PageQuery): Promise<ImagePage> {
  const where = whereClause(query.datasetId, query.filter)
  const order = `${SORT_COLUMNS[query.sort]} ${query.descending ? 'DESC' : 'ASC'}${query.sort === 'imported' ? '' : `, i.id ${query.descending ? 'DESC' : 'ASC'}`}`
  const [rows, total] = await Promise.all([
    db.all<ImageRow>(
      `SELECT i.id, i.original_path, i.width, i.height, i.byte_size, i.class_id, i.split, i.status,
         (SELECT count(*) FROM import_issues q WHERE q.duplicate_of = i.id) AS duplicates
       FROM images i WHERE ${where.sql} ORDER BY ${order} LIMIT ? OFFSET ?`,
      [...where.params, query.limit, query.offset]
    ),
    db.get<{ n: number }>(`SELECT count(*) AS n FROM images i WHERE ${where.sql}`, where.params)
  ])
  const items: ImageItem[] = rows.map((r) => ({
    id: r.id,
    path: r.original_path,
    width: r.width,
    height: r.height,
    byteSize: r.byte_size,
    classId: r.class_id,
    split: r.split,
    status: r.status,
    duplicates: r.duplicates
  }))
  const end = query.offset + items.length
  return { items, total: total?.n ?? 0, nextCursor: end < (total?.n ?? 0) ? end : null }
}

export async function setImageStatus(db: Database, datasetId: number, imageIds: number[], status: 'ok' | 'rejected'): Promise<number> {
  return db.transaction(async (tx) => {
    const foreign = await tx.get<{ n: number }>('SELECT count(*) AS n FROM images WHERE id IN (SELECT value FROM json_each(?)) AND dataset_id != ?', [JSON.stringify(imageIds), datasetId])
    if (foreign?.n) throw new ApiError({ code: 'invalid_input', message: `${foreign.n} of the images belong to another dataset`, fields: [{ path: 'imageIds', message: 'not all in this dataset' }] })
    const { changes } = await tx.run('UPDATE images SET status = ? WHERE dataset_id = ? AND status != ? AND id IN (SELECT value FROM json_each(?))', [status, datasetId, status, JSON.stringify(imageIds)])
    return changes
  })
}

export interface ImageThumbSource {
  id: number
  contentHash: string
  path: string
}

export async function imageSource(db: Database, imageId: number): Promise<ImageThumbSource | null> {
  const row = await db.get<{ id: number; content_hash: string; original_path: string }>('SELECT id, content_hash, original_path FROM images WHERE id = ?', [imageId])
  return row ? { id: row.id, contentHash: row.content_hash, path: row.original_path } : null
}

export interface NewImage {
  contentHash: string
  path: string
  byteSize: number
  width: number
  height: number
  channels: number
  format: string
  classId: number | null
  importId: number | null
}

/** Inserts a batch in one statement; call inside a transaction. Returns the new ids in input order. */
export async function insertImages(tx: Database, datasetId: number, images: NewImage[]): Promise<number[]> {
  if (!images.length) return []
  const rows = JSON.stringify(images.map((i) => [i.contentHash, i.path, i.byteSize, i.width, i.height, i.channels, i.format, i.classId, i.importId]))
  const before = await tx.get<{ id: number }>('SELECT coalesce(max(id), 0) AS id FROM images')
  await tx.run(
    `INSERT INTO images (dataset_id, content_hash, original_path, byte_size, width, height, channels, format, class_id, import_id)
     SELECT ?, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, value ->> 8
     FROM json_each(?) ORDER BY key`,
    [datasetId, rows]
  )
  const first = (before?.id ?? 0) + 1
  return images.map((_, index) => first + index)
}
