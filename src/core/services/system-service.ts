import os from 'node:os'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createRequire } from 'node:module'
import type { SystemInfo } from '../../shared/dto'
import { probeBackends } from '../engine/backend'
import { appVersion } from '../project-root'
import type { Database } from '../store/db'
import { LATEST_SCHEMA_VERSION, schemaVersion } from '../store/migrations'

const requireFromHere = createRequire(__filename)

function packageVersion(name: string): string | null {
  try {
    return (requireFromHere(`${name}/package.json`) as { version: string }).version
  } catch {
    return null
  }
}

const APP_NAME = 'Finetune Studio'
const REPORTED_PACKAGES = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'sqlite3', 'sharp', 'vue', 'zod']

const eventLoop = monitorEventLoopDelay({ resolution: 10 })
eventLoop.enable()

function eventLoopDelayMs(): SystemInfo['eventLoopDelayMs'] {
  const ms = (ns: number) => Math.round((ns / 1e6) * 100) / 100
  return { mean: ms(eventLoop.mean), p99: ms(eventLoop.percentile(99)), max: ms(eventLoop.max) }
}

export interface SystemContext {
  db: Database
  dataDir: string
  transport: SystemInfo['transport']
}

export async function systemInfo(ctx: SystemContext): Promise<SystemInfo> {
  const versions: Record<string, string> = { node: process.versions.node }
  if (process.versions.electron) versions.electron = process.versions.electron
  for (const name of REPORTED_PACKAGES) {
    const version = packageVersion(name)
    if (version) versions[name] = version
  }
  const [backends, sqlite, schema] = await Promise.all([
    probeBackends(),
    ctx.db.get<{ v: string }>('SELECT sqlite_version() AS v'),
    schemaVersion(ctx.db)
  ])
  return {
    app: { name: APP_NAME, version: appVersion() },
    versions,
    platform: { os: `${os.type()} ${os.release()}`, arch: os.arch(), cpus: os.cpus().length, totalMemoryGiB: Math.round(os.totalmem() / 2 ** 30) },
    backends,
    dataDir: ctx.dataDir,
    database: { path: ctx.db.path, schemaVersion: schema, latestSchemaVersion: LATEST_SCHEMA_VERSION, sqliteVersion: sqlite?.v ?? 'unknown' },
    transport: ctx.transport,
    eventLoopDelayMs: eventLoopDelayMs()
  }
}
