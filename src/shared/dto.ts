/** Plain data that crosses the contract. */

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu'

export interface BackendStatus {
  name: BackendName
  /** The package that provides it. */
  packageName: string
  available: boolean
  /** Why it is not used, when it is not: "not installed", "libcudart.so.11.0 not found", ... */
  reason?: string
  /** A short hint for the user on how to get it, when it is not available. */
  hint?: string
}

export interface BackendReport {
  backends: BackendStatus[]
  /** The backend training would use: the first available in order of speed. */
  selected: BackendName
  /** One line for the status bar's badge. */
  summary: string
}

export interface SystemInfo {
  app: { name: string; version: string }
  versions: Record<string, string>
  platform: { os: string; arch: string; cpus: number; totalMemoryGiB: number }
  backends: BackendReport
  dataDir: string
  database: { path: string; schemaVersion: number; latestSchemaVersion: number; sqliteVersion: string }
  transport: 'electron' | 'web' | 'cli'
  /** How promptly the backend's event loop has answered since it started (training must not stall it). */
  eventLoopDelayMs: { mean: number; p99: number; max: number }
}

export type Split = 'train' | 'validation' | 'test'
export const SPLITS: readonly Split[] = ['train', 'validation', 'test']

export interface SplitCounts {
  train: number
  validation: number
  test: number
}

export interface DatasetSummary {
  id: number
  name: string
  createdAt: string
  imageCount: number
  labelledCount: number
  classCount: number
  splitRatios: SplitCounts
  splitSeed: number
}

export interface ClassSummary {
  id: number
  name: string
  /** Order of the class buttons and of hotkeys 1–9. */
  position: number
  count: number
  splits: SplitCounts
}

export interface DatasetStats {
  dataset: DatasetSummary
  classes: ClassSummary[]
  total: number
  labelled: number
  unlabelled: number
  rejected: number
  /** Images some other imported file duplicated. */
  withDuplicates: number
  splits: SplitCounts & { unassigned: number }
}

export type ImportSource =
  | { kind: 'folder'; path: string }
  | { kind: 'csv'; path: string }
  | { kind: 'idx'; images: string; labels?: string }
  | { kind: 'files'; paths: string[] }

export interface ImportProgress {
  importId: number
  datasetId: number
  status: 'running' | 'completed' | 'cancelled' | 'failed'
  total: number
  processed: number
  imported: number
  /** Files already in the dataset from an earlier import of the same source. */
  alreadyPresent: number
  duplicates: number
  rejected: number
  imagesPerSecond: number
  etaSeconds: number | null
  error?: string
}

export interface ImportReport extends ImportProgress {
  /** The folder or file imported (for IDX: `images + labels`). */
  source: string
  layout: string
  /** ISO 8601 times; finishedAt is null while the import runs. */
  startedAt: string
  finishedAt: string | null
  duplicateFiles: { file: string; duplicateOf: { imageId: number; path: string } }[]
  rejectedFiles: { file: string; reason: string }[]
  /** True when nothing new was found: every file was already in the dataset. */
  nothingNew: boolean
}

export interface ImageItem {
  id: number
  path: string
  width: number
  height: number
  byteSize: number
  classId: number | null
  split: Split | null
  status: 'ok' | 'rejected'
  duplicates: number
}

export interface ImagePage {
  items: ImageItem[]
  total: number
  /** Pass back as `after` for the next page; null at the end. */
  nextCursor: number | null
}

export interface LabelActionResult {
  actionId: number | null
  description: string
  changed: number
}

/** One folder as the web-mode folder browser shows it. */
export interface FolderListing {
  path: string
  /** null at the top of a root. */
  parent: string | null
  roots: { label: string; path: string }[]
  folders: { name: string; path: string }[]
  /** Images directly in this folder. */
  imageCount: number
  csvFiles: { name: string; path: string }[]
}

/** What a weights file holds, as the Model view shows it. */
export interface WeightsInfo {
  path: string
  source: 'torchvision' | 'timm' | 'keras' | 'tfjs'
  format: 'safetensors' | 'keras-h5' | 'tfjs-layers'
  depth: 11 | 13 | 16 | 19
  preprocessing: { kind: 'torchvision' | 'caffe'; channelOrder: 'RGB' | 'BGR'; mean: number[]; std?: number[]; scale?: number }
  hasTop: boolean
  numClasses?: number
  warnings: string[]
}
