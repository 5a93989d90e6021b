/**
 * What to import from a folder or a label CSV: which files, with which labels, and what was
 * left out and why. Nothing here decodes an image; files are chosen by extension, and the
 * import then inspects each one (decode.ts) and records the bad ones.
 */
import { readFile, readdir, stat } from 'node:fs/promises'
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import type { Dirent, Stats } from 'node:fs'
import { isImagePath, nonImageReason } from '../../shared/image-files'

export { IMAGE_EXTENSIONS, isImagePath } from '../../shared/image-files'

export type DatasetLayout = 'class-folders' | 'flat'

export interface ScannedFile {
  /** Absolute path. */
  path: string
  /** The class folder's name (NFC-normalized), or null for an unlabelled image. */
  label: string | null
}

export interface SkippedEntry {
  path: string
  reason: string
}

export interface ScanResult {
  /** Absolute path of the scanned folder. */
  root: string
  layout: DatasetLayout
  /** Images to import, sorted by path. */
  files: ScannedFile[]
  /** Sorted class names (empty for a flat folder). */
  classes: string[]
  skipped: SkippedEntry[]
}

export interface ScanOptions {
  /**
   * 'auto' (default): 'class-folders' when at least one subfolder of `dir` holds an image
   * (at any depth), else 'flat'. Force a layout when the guess is wrong, e.g. a flat set
   * of photos sorted into year folders.
   */
  layout?: 'auto' | DatasetLayout
}

/** The folder or CSV itself cannot be used (as opposed to one bad file in it). */
export class ScanError extends Error {
  readonly path: string
  readonly code: 'not_found' | 'not_a_directory' | 'not_a_file' | 'unreadable'

  constructor(path: string, code: ScanError['code'], message: string) {
    super(message)
    this.name = 'ScanError'
    this.path = path
    this.code = code
  }
}

/**
 * Walks `dir` recursively and lists the images to import.
 *
 * Class folders: the label is the name of the top-level subfolder, however deep the image
 * lies under it. Images directly in `dir` are imported unlabelled (label null) and the
 * person labels them later. In a flat layout every image is unlabelled.
 *
 * Skipped and reported, never read: hidden files and folders (name starts with '.'),
 * `__MACOSX` folders, files whose extension is not an image, anything that is not a regular
 * file, broken symbolic links, and folders that cannot be read. Symbolic links are followed;
 * a folder already visited (a link loop, or two links to one folder) is skipped, so the walk
 * always ends.
 *
 * Throws ScanError when `dir` does not exist, is not a folder, or cannot be read.
 */
export async function scanFolder(dir: string, options: ScanOptions = {}): Promise<ScanResult> {
  const root = resolve(dir)
  let rootStats: Stats
  try {
    rootStats = await stat(root)
  } catch (error) {
    throw pathError(root, error, 'folder')
  }
  if (!rootStats.isDirectory()) throw new ScanError(root, 'not_a_directory', `Not a folder: ${root}`)

  const images: { path: string; top: string | null }[] = []
  const skipped: SkippedEntry[] = []
  const visited = new Map<string, string>([[inodeKey(rootStats), root]])

  // Depth-first with an explicit stack: deep trees cannot overflow the call stack.
  const stack: { path: string; top: string | null }[] = [{ path: root, top: null }]
  while (stack.length > 0) {
    const folder = stack.pop()!
    let entries: Dirent[]
    try {
      entries = (await readdir(folder.path, { withFileTypes: true })).sort((a, b) => compare(a.name, b.name))
    } catch (error) {
      if (folder.path === root) throw pathError(root, error, 'folder')
      skipped.push({ path: folder.path, reason: unreadableReason(error) })
      continue
    }
    const subfolders: { path: string; top: string | null }[] = []
    for (const entry of entries) {
      const name = entry.name
      const path = join(folder.path, name)
      if (name.startsWith('.')) {
        skipped.push({ path, reason: 'hidden' })
        continue
      }
      // Plain files need no stat call (the bulk of a large dataset); links are followed, and
      // folders are stat'ed for their inode, to notice one reached twice.
      let kind: 'file' | 'folder' | 'other' = entry.isFile() ? 'file' : 'other'
      let stats: Stats | null = null
      if (entry.isDirectory() || entry.isSymbolicLink()) {
        try {
          stats = await stat(path)
        } catch (error) {
          skipped.push({ path, reason: errno(error) === 'ENOENT' ? 'broken symbolic link' : unreadableReason(error) })
          continue
        }
        kind = stats.isDirectory() ? 'folder' : stats.isFile() ? 'file' : 'other'
      }
      if (kind === 'folder' && stats) {
        if (name === '__MACOSX') {
          skipped.push({ path, reason: 'macOS archive metadata folder' })
          continue
        }
        const key = inodeKey(stats)
        const seen = visited.get(key)
        if (seen !== undefined) {
          skipped.push({ path, reason: `folder already scanned as ${seen} (symbolic link loop or repeated link)` })
          continue
        }
        visited.set(key, path)
        subfolders.push({ path, top: folder.top ?? name.normalize('NFC') })
      } else if (kind === 'other') {
        skipped.push({ path, reason: 'not a regular file' })
      } else if (isImagePath(name)) {
        images.push({ path, top: folder.top })
      } else {
        skipped.push({ path, reason: nonImageReason(name) })
      }
    }
    // Reversed so the stack pops them in name order.
    for (let i = subfolders.length - 1; i >= 0; i--) stack.push(subfolders[i])
  }

  const hasClassFolders = images.some((image) => image.top !== null)
  const layout: DatasetLayout = options.layout === undefined || options.layout === 'auto' ? (hasClassFolders ? 'class-folders' : 'flat') : options.layout
  const files = images
    .map((image) => ({ path: image.path, label: layout === 'class-folders' ? image.top : null }))
    .sort((a, b) => compare(a.path, b.path))
  const classes = [...new Set(files.map((f) => f.label).filter((l): l is string => l !== null))].sort(compare)
  return { root, layout, files, classes, skipped: skipped.sort((a, b) => compare(a.path, b.path)) }
}

export interface LabelCsvEntry {
  /** Absolute path of the image. */
  path: string
  /** The path as written in the CSV. */
  file: string
  label: string
  /** 1-based line number in the CSV. */
  line: number
}

export interface LabelCsvError {
  /** 1-based line number in the CSV. */
  line: number
  message: string
}

export interface LabelCsvResult {
  entries: LabelCsvEntry[]
  errors: LabelCsvError[]
}

export interface ParseLabelCsvOptions {
  /** Check that every listed file exists and is a file. Default true. */
  checkFiles?: boolean
}

/**
 * Reads a CSV of `file,label` rows. The header row is optional (recognised by its names:
 * file/filename/path/image and label/class/category). Fields may be quoted ("a, b" and ""
 * for a quote); CRLF and a UTF-8 BOM are fine; blank lines are ignored. Paths are relative
 * to the CSV's folder unless absolute.
 *
 * Each bad row becomes an error naming its line (wrong number of fields, empty file or
 * label, not an image, file not found, listed twice) and is left out of `entries`; the
 * good rows are still returned. Throws ScanError only when the CSV itself cannot be read.
 */
export async function parseLabelCsv(csvPath: string, options: ParseLabelCsvOptions = {}): Promise<LabelCsvResult> {
  const absolute = resolve(csvPath)
  let text: string
  try {
    text = await readFile(absolute, 'utf8')
  } catch (error) {
    throw pathError(absolute, error, 'file')
  }
  const base = dirname(absolute)
  const errors: LabelCsvError[] = []
  const rows = parseCsv(text.replace(/^\uFEFF/, '')).filter((r) => r.error !== undefined || !(r.fields.length === 1 && r.fields[0].trim() === ''))
  if (rows.length > 0 && rows[0].error === undefined && isHeader(rows[0].fields)) rows.shift()

  const candidates: LabelCsvEntry[] = []
  const firstLine = new Map<string, LabelCsvEntry>()
  for (const { fields, line, error } of rows) {
    if (error !== undefined) {
      errors.push({ line, message: `line ${line}: ${error}` })
      continue
    }
    if (fields.length !== 2) {
      errors.push({ line, message: `line ${line}: expected 2 fields (file,label), found ${fields.length}` })
      continue
    }
    const file = fields[0].trim()
    const label = fields[1].trim().normalize('NFC')
    if (file === '') {
      errors.push({ line, message: `line ${line}: empty file name` })
      continue
    }
    if (label === '') {
      errors.push({ line, message: `line ${line}: empty label for ${file}` })
      continue
    }
    if (!isImagePath(file)) {
      errors.push({ line, message: `line ${line}: not an image file: ${file}` })
      continue
    }
    const path = isAbsolute(file) ? resolve(file) : resolve(base, file)
    const earlier = firstLine.get(path)
    if (earlier) {
      const conflict = earlier.label === label ? '' : ` with label "${earlier.label}" (this line says "${label}")`
      errors.push({ line, message: `line ${line}: ${file} is already listed on line ${earlier.line}${conflict}` })
      continue
    }
    const entry = { path, file, label, line }
    firstLine.set(path, entry)
    candidates.push(entry)
  }

  let entries = candidates
  if (options.checkFiles !== false) {
    const problems = await mapLimit(candidates, 32, (entry) => missingFileProblem(entry.path))
    entries = candidates.filter((entry, i) => {
      const problem = problems[i]
      if (problem === null) return true
      errors.push({ line: entry.line, message: `line ${entry.line}: ${problem}: ${entry.file}${entry.file === displayPath(base, entry.path) ? '' : ` (${entry.path})`}` })
      return false
    })
  }
  errors.sort((a, b) => a.line - b.line)
  return { entries, errors }
}

interface CsvRecord {
  fields: string[]
  /** Line on which the record starts. */
  line: number
  error?: string
}

/**
 * RFC 4180 with a few liberties: CR, LF or CRLF rows; a quote inside an unquoted field is
 * kept as text. An unterminated quote ends parsing (everything after it would be one field).
 */
function parseCsv(text: string): CsvRecord[] {
  const records: CsvRecord[] = []
  let i = 0
  let line = 1
  const atRowEnd = (): boolean => i >= text.length || text[i] === '\n' || text[i] === '\r'
  while (i < text.length) {
    const record: CsvRecord = { fields: [], line }
    for (;;) {
      let field = ''
      if (text[i] === '"') {
        i++
        let closed = false
        while (i < text.length) {
          const c = text[i]
          if (c === '"') {
            i++
            if (text[i] !== '"') {
              closed = true
              break
            }
          } else if (c === '\n' || (c === '\r' && text[i + 1] !== '\n')) {
            line++
          }
          field += c
          i++
        }
        if (!closed) {
          record.error = 'unterminated quoted field (missing closing ")'
          records.push(record)
          return records
        }
        if (!atRowEnd() && text[i] !== ',') {
          record.error ??= 'unexpected text after a closing quote'
          while (!atRowEnd() && text[i] !== ',') i++
        }
      } else {
        while (!atRowEnd() && text[i] !== ',') field += text[i++]
      }
      record.fields.push(field)
      if (text[i] !== ',') break
      i++
    }
    i += text[i] === '\r' && text[i + 1] === '\n' ? 2 : 1
    line++
    records.push(record)
  }
  return records
}

const FILE_HEADERS = new Set(['file', 'filename', 'file_name', 'filepath', 'path', 'image', 'img'])
const LABEL_HEADERS = new Set(['label', 'class', 'category', 'target'])

function isHeader(fields: string[]): boolean {
  return fields.length === 2 && FILE_HEADERS.has(fields[0].trim().toLowerCase()) && LABEL_HEADERS.has(fields[1].trim().toLowerCase())
}

async function missingFileProblem(path: string): Promise<string | null> {
  try {
    const stats = await stat(path)
    return stats.isFile() ? null : 'not a file'
  } catch (error) {
    return errno(error) === 'ENOENT' ? 'file not found' : unreadableReason(error)
  }
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i])
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

function displayPath(base: string, path: string): string {
  return relative(base, path).split(sep).join('/')
}

function pathError(path: string, error: unknown, kind: 'folder' | 'file'): ScanError {
  const code = errno(error)
  if (code === 'ENOENT') return new ScanError(path, 'not_found', `${kind === 'folder' ? 'Folder' : 'File'} not found: ${path}`)
  if (code === 'ENOTDIR') return new ScanError(path, 'not_a_directory', `Not a folder: ${path}`)
  if (code === 'EISDIR') return new ScanError(path, 'not_a_file', `Not a file (a folder): ${path}`)
  return new ScanError(path, 'unreadable', `Cannot read ${path}: ${code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (code ?? String(error))}`)
}

function unreadableReason(error: unknown): string {
  const code = errno(error)
  if (code === 'EACCES' || code === 'EPERM') return 'unreadable: permission denied'
  if (code === 'ELOOP') return 'symbolic link loop'
  return `unreadable: ${code ?? String(error)}`
}


function inodeKey(stats: Stats): string {
  return `${stats.dev}:${stats.ino}`
}

function errno(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code
    if (typeof code === 'string') return code
  }
  return undefined
}

/** Code-point order: the same on every machine, unlike localeCompare. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
