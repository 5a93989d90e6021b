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
}
