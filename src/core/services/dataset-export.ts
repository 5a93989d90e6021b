import fs from 'node:fs/promises'
import path from 'node:path'
import type { Database } from '../store/db'
import { getDataset } from '../store/datasets-repo'
import { loadStoredImage } from '../data/stored-image'

/** A safe folder or file name for any class name or original file name. */
function safeName(name: string): string {
  const cleaned = [...name]
    .map((ch) => (ch.charCodeAt(0) < 32 || '/\\:*?"<>|'.includes(ch) ? '_' : ch))
    .join('')
    .replace(/^\.+/, '_')
    .trim()
  return cleaned || '_'
}

/** Copies every labelled image into dir/<class>/<file>; files that cannot be read are listed, not fatal. */
export async function exportDataset(db: Database, datasetId: number, dir: string): Promise<{ exported: number; classes: number; failed: { file: string; reason: string }[] }> {
  await getDataset(db, datasetId)
  const rows = await db.all<{ id: number; original_path: string; class_name: string }>(
    `SELECT i.id, i.original_path, c.name AS class_name FROM images i JOIN classes c ON c.id = i.class_id
     WHERE i.dataset_id = ? AND i.status = 'ok' ORDER BY c.position, i.id`,
    [datasetId]
  )
  const failed: { file: string; reason: string }[] = []
  const classes = new Set<string>()
  let exported = 0
  for (const row of rows) {
    const folder = path.join(dir, safeName(row.class_name))
    if (!classes.has(folder)) {
      await fs.mkdir(folder, { recursive: true })
      classes.add(folder)
    }
    const base = safeName(path.basename(row.original_path.replace(/#(\d+)$/, '-$1.png')))
    const bytes = await loadStoredImage(row.original_path)
    if (!Buffer.isBuffer(bytes)) {
      failed.push({ file: row.original_path, reason: bytes.reason })
      continue
    }
    await fs.writeFile(path.join(folder, `${row.id}-${base}`), bytes)
    exported++
  }
  return { exported, classes: classes.size, failed }
}
