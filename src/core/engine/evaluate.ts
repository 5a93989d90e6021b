/**
 * Evaluating a model on labelled images: accuracy, per-class precision / recall / F1 / support,
 * and the confusion matrix (rows: true class, columns: predicted class).
 *
 * The images come from a folder with one subfolder per class (matched to the model's class names
 * by folder name), from a dataset's split, or from a run's snapshot (its held-out test split).
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { isImagePath } from '../data/scan'
import type { Database } from '../store/db'
import { loadSnapshot } from '../store/snapshots-repo'
import type { LoadedModel } from './load-trained-model'
import { logitsOfPixels, readImagePixels } from './predict'

export interface EvaluationItem {
  /** A file path, or an IDX record `<file>#<n>`. */
  path: string
  /** Index into the model's class names. */
  label: number
}

export interface ClassReport {
  class: string
  precision: number
  recall: number
  f1: number
  /** Images whose true class this is. */
  support: number
  /** Images predicted as this class. */
  predicted: number
}

export interface EvaluationReport {
  count: number
  accuracy: number
  classNames: string[]
  perClass: ClassReport[]
  /** `confusionMatrix[t][p]`: images of true class t predicted as p. */
  confusionMatrix: number[][]
  /** Unweighted means over the classes that have support. */
  macro: { precision: number; recall: number; f1: number }
}

export interface ItemPrediction {
  path: string
  label: number
  predicted: number
}

/** The folder's images and their classes; a folder whose name is not a class is an error naming it. */
export async function folderEvaluationItems(dir: string, classNames: readonly string[]): Promise<EvaluationItem[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    throw new Error(error.code === 'ENOENT' ? `${dir}: no such folder` : error.code === 'ENOTDIR' ? `${dir} is not a folder` : `${dir}: ${error.message}`)
  })
  const folders = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).sort((a, b) => a.name.localeCompare(b.name))
  const index = new Map(classNames.map((name, i) => [name, i]))
  const unknown = folders.find((f) => !index.has(f.name))
  if (unknown) {
    throw new Error(`${join(dir, unknown.name)}: folder "${unknown.name}" is not one of the model's classes (${classNames.join(', ')})`)
  }
  const items: EvaluationItem[] = []
  for (const folder of folders) {
    const label = index.get(folder.name) as number
    const files = await listImages(join(dir, folder.name))
    for (const path of files) items.push({ path, label })
  }
  if (items.length === 0) throw new Error(`${dir} has no images in class folders (expected ${dir}/<class>/<image>, classes: ${classNames.join(', ')})`)
  return items
}

async function listImages(dir: string): Promise<string[]> {
  const out: string[] = []
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))
  for (const e of entries) {
    if (e.name.startsWith('.')) continue
    const path = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await listImages(path)))
    else if (e.isFile() && isImagePath(path)) out.push(path)
  }
  return out
}

/** Maps one list of class names onto the model's, by name; a name the model lacks is an error naming it. */
function classIndexMap(from: readonly string[], to: readonly string[], what: string): number[] {
  return from.map((name) => {
    const i = to.indexOf(name)
    if (i < 0) throw new Error(`${what} has class "${name}", which is not one of the model's classes (${to.join(', ')})`)
    return i
  })
}

/** A snapshot's items of one split (default: test, held out from training), labelled by the model's class names. */
export async function snapshotEvaluationItems(db: Database, snapshotId: number, classNames: readonly string[], split: 'train' | 'validation' | 'test' = 'test'): Promise<EvaluationItem[]> {
  const snapshot = await loadSnapshot(db, snapshotId)
  const map = classIndexMap(snapshot.classNames, classNames, `snapshot ${snapshotId}`)
  const items = snapshot.items.filter((i) => i.split === split).map((i) => ({ path: i.path, label: map[i.label] }))
  if (items.length === 0) throw new Error(`snapshot ${snapshotId} (dataset ${snapshot.datasetId}) has no images in its ${split} split`)
  return items
}

/** A dataset's labelled images of one split as they are now, labelled by the model's class names. */
export async function datasetEvaluationItems(db: Database, datasetId: number, classNames: readonly string[], split: 'train' | 'validation' | 'test' = 'test'): Promise<EvaluationItem[]> {
  const rows = await db.all<{ path: string; name: string }>(
    `SELECT i.original_path AS path, c.name AS name FROM images i JOIN classes c ON c.id = i.class_id
     WHERE i.dataset_id = ? AND i.status = 'ok' AND i.split = ? AND c.deleted_at IS NULL ORDER BY i.id`,
    [datasetId, split]
  )
  const names = [...new Set(rows.map((r) => r.name))]
  const indices = classIndexMap(names, classNames, `dataset ${datasetId}`)
  const map = new Map(names.map((n, i) => [n, indices[i]]))
  if (rows.length === 0) throw new Error(`dataset ${datasetId} has no labelled images in its ${split} split`)
  return rows.map((r) => ({ path: r.path, label: map.get(r.name) as number }))
}

function ratio(a: number, b: number): number {
  return b === 0 ? 0 : a / b
}

/** The report from true and predicted class indices (precision of a never-predicted class: 0). */
export function evaluationReport(classNames: readonly string[], labels: ArrayLike<number>, predicted: ArrayLike<number>): EvaluationReport {
  const k = classNames.length
  if (labels.length !== predicted.length) throw new Error(`${labels.length} labels but ${predicted.length} predictions`)
  const matrix = Array.from({ length: k }, () => new Array<number>(k).fill(0))
  let correct = 0
  for (let i = 0; i < labels.length; i++) {
    const t = labels[i]
    const p = predicted[i]
    if (!(t >= 0 && t < k) || !(p >= 0 && p < k)) throw new Error(`class index out of range at item ${i}: true ${t}, predicted ${p} (${k} classes)`)
    matrix[t][p]++
    if (t === p) correct++
  }
  const perClass = classNames.map((name, c) => {
    const tp = matrix[c][c]
    const support = matrix[c].reduce((a, b) => a + b, 0)
    const predictedCount = matrix.reduce((a, row) => a + row[c], 0)
    const precision = ratio(tp, predictedCount)
    const recall = ratio(tp, support)
    return { class: name, precision, recall, f1: ratio(2 * precision * recall, precision + recall), support, predicted: predictedCount }
  })
  const present = perClass.filter((c) => c.support > 0)
  const mean = (f: (c: ClassReport) => number) => ratio(present.reduce((a, c) => a + f(c), 0), present.length)
  return {
    count: labels.length,
    accuracy: ratio(correct, labels.length),
    classNames: [...classNames],
    perClass,
    confusionMatrix: matrix,
    macro: { precision: mean((c) => c.precision), recall: mean((c) => c.recall), f1: mean((c) => c.f1) }
  }
}

export interface EvaluateOptions {
  batchSize?: number
  onProgress?: (done: number, total: number) => void
}

/** Runs every item through the model (in batches) and reports; `predictions` lists each item's outcome. */
export async function evaluateModel(
  loaded: LoadedModel,
  items: readonly EvaluationItem[],
  options: EvaluateOptions = {}
): Promise<EvaluationReport & { predictions: ItemPrediction[] }> {
  const batchSize = options.batchSize ?? 32
  const size = loaded.config.inputSize
  const perImage = size * size * 3
  const predictions: ItemPrediction[] = []
  for (let start = 0; start < items.length; start += batchSize) {
    const batch = items.slice(start, start + batchSize)
    const pixels = new Uint8Array(batch.length * perImage)
    const decoded = await Promise.all(batch.map((item) => readImagePixels(item.path, size, loaded.preprocessing)))
    decoded.forEach((d, i) => pixels.set(d, i * perImage))
    const logits = logitsOfPixels(loaded, pixels, batch.length)
    logits.forEach((l, i) => {
      let best = 0
      for (let c = 1; c < l.length; c++) if (l[c] > l[best]) best = c
      predictions.push({ path: batch[i].path, label: batch[i].label, predicted: best })
    })
    options.onProgress?.(predictions.length, items.length)
  }
  const report = evaluationReport(
    loaded.classNames,
    predictions.map((p) => p.label),
    predictions.map((p) => p.predicted)
  )
  return { ...report, predictions }
}
