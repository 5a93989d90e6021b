import type { ClassSummary, LabelActionResult } from '../../shared/dto'
import { ApiError } from '../../shared/errors'
import type { Database } from './db'
import { listClasses } from './datasets-repo'

interface ClassRow {
  id: number
  dataset_id: number
  name: string
  deleted_at: string | null
}

async function liveClass(db: Database, datasetId: number, classId: number, field = 'classId'): Promise<ClassRow> {
  const row = await db.get<ClassRow>('SELECT * FROM classes WHERE id = ? AND deleted_at IS NULL', [classId])
  if (!row || row.dataset_id !== datasetId) {
    throw new ApiError({ code: 'not_found', message: `No class ${classId} in dataset ${datasetId}`, fields: [{ path: field, message: 'not a class of this dataset' }] })
  }
  return row
}

async function assertNameFree(db: Database, datasetId: number, name: string, except?: number): Promise<void> {
  const clash = await db.get<{ id: number }>('SELECT id FROM classes WHERE dataset_id = ? AND name = ? AND deleted_at IS NULL', [datasetId, name])
  if (clash && clash.id !== except) {
    throw new ApiError({ code: 'conflict', message: `Dataset ${datasetId} already has a class named "${name}"`, fields: [{ path: 'name', message: 'already taken' }] })
  }
}

async function classSummary(db: Database, datasetId: number, classId: number): Promise<ClassSummary> {
  const found = (await listClasses(db, datasetId)).find((c) => c.id === classId)
  if (!found) throw new ApiError({ code: 'not_found', message: `No class ${classId} in dataset ${datasetId}` })
  return found
}

export async function createClass(db: Database, datasetId: number, name: string): Promise<ClassSummary> {
  const trimmed = name.trim()
  const id = await db.transaction(async (tx) => {
    await assertNameFree(tx, datasetId, trimmed)
    const next = await tx.get<{ p: number }>('SELECT coalesce(max(position), -1) + 1 AS p FROM classes WHERE dataset_id = ? AND deleted_at IS NULL', [datasetId])
    return (await tx.run('INSERT INTO classes (dataset_id, name, position) VALUES (?, ?, ?)', [datasetId, trimmed, next?.p ?? 0])).lastID
  })
  return classSummary(db, datasetId, id)
}

/** The ids of these class names in the dataset, creating the missing ones (for imports). Call inside a transaction. */
export async function ensureClasses(tx: Database, datasetId: number, names: Iterable<string>): Promise<Map<string, number>> {
  const ids = new Map<string, number>()
  const existing = await tx.all<{ id: number; name: string }>('SELECT id, name FROM classes WHERE dataset_id = ? AND deleted_at IS NULL', [datasetId])
  for (const row of existing) ids.set(row.name, row.id)
  let position = (await tx.get<{ p: number }>('SELECT coalesce(max(position), -1) + 1 AS p FROM classes WHERE dataset_id = ?', [datasetId]))?.p ?? 0
  for (const raw of names) {
    const name = raw.trim()
    if (ids.has(name)) continue
    if (!name || name.length > 100) throw new ApiError({ code: 'invalid_input', message: `Class name "${raw}" must be 1 to 100 characters` })
    ids.set(name, (await tx.run('INSERT INTO classes (dataset_id, name, position) VALUES (?, ?, ?)', [datasetId, name, position++])).lastID)
  }
  return ids
}

export async function renameClass(db: Database, datasetId: number, classId: number, name: string): Promise<ClassSummary> {
  await liveClass(db, datasetId, classId)
  await assertNameFree(db, datasetId, name.trim(), classId)
  await db.run('UPDATE classes SET name = ? WHERE id = ?', [name.trim(), classId])
  return classSummary(db, datasetId, classId)
}

/** Records a new action and its changes; a new action discards whatever could have been redone. */
async function recordAction(
  tx: Database,
  datasetId: number,
  kind: 'label' | 'merge' | 'delete-class',
  description: string,
  removedClassId: number | null,
  changes: { imageId: number; oldClassId: number | null; newClassId: number | null }[]
): Promise<number> {
  await tx.run('DELETE FROM label_changes WHERE action_id IN (SELECT id FROM label_actions WHERE dataset_id = ? AND undone = 1)', [datasetId])
  await tx.run('DELETE FROM label_actions WHERE dataset_id = ? AND undone = 1', [datasetId])
  const actionId = (await tx.run('INSERT INTO label_actions (dataset_id, kind, description, removed_class_id) VALUES (?, ?, ?, ?)', [datasetId, kind, description, removedClassId])).lastID
  // One statement per action: the changes travel as JSON instead of one round trip per image.
  await tx.run(
    `INSERT INTO label_changes (action_id, image_id, old_class_id, new_class_id)
     SELECT ?, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?)`,
    [actionId, JSON.stringify(changes.map((c) => [c.imageId, c.oldClassId, c.newClassId]))]
  )
  await tx.run(
    `UPDATE images SET class_id = (SELECT new_class_id FROM label_changes WHERE action_id = ? AND image_id = images.id)
     WHERE id IN (SELECT image_id FROM label_changes WHERE action_id = ?)`,
    [actionId, actionId]
  )
  return actionId
}

async function imagesOf(tx: Database, datasetId: number, imageIds: number[]): Promise<{ id: number; class_id: number | null }[]> {
  const rows = await tx.all<{ id: number; class_id: number | null; dataset_id: number }>(
    'SELECT id, class_id, dataset_id FROM images WHERE id IN (SELECT value FROM json_each(?))',
    [JSON.stringify(imageIds)]
  )
  const foreign = rows.filter((r) => r.dataset_id !== datasetId).map((r) => r.id)
  const found = new Set(rows.map((r) => r.id))
  const missing = imageIds.filter((id) => !found.has(id))
  if (foreign.length || missing.length) {
    const problems = [
      foreign.length ? `image(s) ${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? '…' : ''} belong to another dataset` : '',
      missing.length ? `image(s) ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? '…' : ''} do not exist` : ''
    ].filter(Boolean)
    throw new ApiError({ code: 'invalid_input', message: `Cannot label in dataset ${datasetId}: ${problems.join('; ')}`, fields: [{ path: 'imageIds', message: problems.join('; ') }] })
  }
  return rows
}

/** Labels (or, with classId null, unlabels) images as one undoable action. */
export async function setLabels(db: Database, datasetId: number, imageIds: number[], classId: number | null): Promise<LabelActionResult> {
  return db.transaction(async (tx) => {
    const target = classId === null ? null : await liveClass(tx, datasetId, classId)
    const rows = await imagesOf(tx, datasetId, [...new Set(imageIds)])
    const changes = rows.filter((r) => r.class_id !== classId).map((r) => ({ imageId: r.id, oldClassId: r.class_id, newClassId: classId }))
    const what = `${rows.length} image${rows.length === 1 ? '' : 's'}`
    const description = target ? `Label ${what} as "${target.name}"` : `Unlabel ${what}`
    if (!changes.length) return { actionId: null, description, changed: 0 }
    const actionId = await recordAction(tx, datasetId, 'label', description, null, changes)
    return { actionId, description, changed: changes.length }
  })
}

export async function mergeClasses(db: Database, datasetId: number, sourceId: number, targetId: number): Promise<LabelActionResult> {
  if (sourceId === targetId) throw new ApiError({ code: 'invalid_input', message: 'Cannot merge a class into itself', fields: [{ path: 'targetClassId', message: 'same as sourceClassId' }] })
  return db.transaction(async (tx) => {
    const source = await liveClass(tx, datasetId, sourceId, 'sourceClassId')
    const target = await liveClass(tx, datasetId, targetId, 'targetClassId')
    const rows = await tx.all<{ id: number }>('SELECT id FROM images WHERE class_id = ?', [sourceId])
    const description = `Merge "${source.name}" into "${target.name}"`
    const actionId = await recordAction(tx, datasetId, 'merge', description, sourceId, rows.map((r) => ({ imageId: r.id, oldClassId: sourceId, newClassId: targetId })))
    await tx.run("UPDATE classes SET deleted_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?", [sourceId])
    return { actionId, description, changed: rows.length }
  })
}

/** Deletes a class; its images become unlabelled. Undo brings both back. */
export async function deleteClass(db: Database, datasetId: number, classId: number): Promise<LabelActionResult> {
  return db.transaction(async (tx) => {
    const doomed = await liveClass(tx, datasetId, classId)
    const rows = await tx.all<{ id: number }>('SELECT id FROM images WHERE class_id = ?', [classId])
    const description = `Delete class "${doomed.name}"`
    const actionId = await recordAction(tx, datasetId, 'delete-class', description, classId, rows.map((r) => ({ imageId: r.id, oldClassId: classId, newClassId: null })))
    await tx.run("UPDATE classes SET deleted_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?", [classId])
    return { actionId, description, changed: rows.length }
  })
}

interface ActionRow {
  id: number
  kind: string
  description: string
  removed_class_id: number | null
}

export async function undo(db: Database, datasetId: number): Promise<LabelActionResult> {
  return db.transaction(async (tx) => {
    const action = await tx.get<ActionRow>('SELECT * FROM label_actions WHERE dataset_id = ? AND undone = 0 ORDER BY id DESC LIMIT 1', [datasetId])
    if (!action) return { actionId: null, description: 'Nothing to undo', changed: 0 }
    if (action.removed_class_id !== null) {
      const removed = await tx.get<ClassRow>('SELECT * FROM classes WHERE id = ?', [action.removed_class_id])
      if (removed) {
        const clash = await tx.get<{ id: number }>('SELECT id FROM classes WHERE dataset_id = ? AND name = ? AND deleted_at IS NULL', [datasetId, removed.name])
        if (clash) {
          throw new ApiError({ code: 'conflict', message: `Cannot undo "${action.description}": a class named "${removed.name}" exists again; rename it first` })
        }
      }
      await tx.run('UPDATE classes SET deleted_at = NULL WHERE id = ?', [action.removed_class_id])
    }
    const { changes } = await tx.run(
      `UPDATE images SET class_id = (SELECT old_class_id FROM label_changes WHERE action_id = ? AND image_id = images.id)
       WHERE id IN (SELECT image_id FROM label_changes WHERE action_id = ?)`,
      [action.id, action.id]
    )
    await tx.run('UPDATE label_actions SET undone = 1 WHERE id = ?', [action.id])
    return { actionId: action.id, description: `Undo: ${action.description}`, changed: changes }
  })
}

export async function redo(db: Database, datasetId: number): Promise<LabelActionResult> {
  return db.transaction(async (tx) => {
    const action = await tx.get<ActionRow>('SELECT * FROM label_actions WHERE dataset_id = ? AND undone = 1 ORDER BY id ASC LIMIT 1', [datasetId])
    if (!action) return { actionId: null, description: 'Nothing to redo', changed: 0 }
    const { changes } = await tx.run(
      `UPDATE images SET class_id = (SELECT new_class_id FROM label_changes WHERE action_id = ? AND image_id = images.id)
       WHERE id IN (SELECT image_id FROM label_changes WHERE action_id = ?)`,
      [action.id, action.id]
    )
    if (action.removed_class_id !== null) {
      await tx.run("UPDATE classes SET deleted_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?", [action.removed_class_id])
    }
    await tx.run('UPDATE label_actions SET undone = 0 WHERE id = ?', [action.id])
    return { actionId: action.id, description: `Redo: ${action.description}`, changed: changes }
  })
}
