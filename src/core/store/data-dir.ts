import os from 'node:os'
import path from 'node:path'

export const DATA_DIR_ENV = 'FINETUNE_STUDIO_DATA_DIR'
export const DATABASE_FILE = 'studio.sqlite'

export interface DataDirSources {
  flag?: string
  env?: NodeJS.ProcessEnv
  platform?: NodeJS.Platform
  home?: string
}

/** `--data-dir` beats FINETUNE_STUDIO_DATA_DIR beats the platform's per-user default. */
export function resolveDataDir(sources: DataDirSources = {}): string {
  const env = sources.env ?? process.env
  if (sources.flag) return path.resolve(sources.flag)
  if (env[DATA_DIR_ENV]) return path.resolve(env[DATA_DIR_ENV] as string)
  return defaultDataDir(sources.platform ?? process.platform, sources.home ?? os.homedir(), env)
}

export function defaultDataDir(platform: NodeJS.Platform, home: string, env: NodeJS.ProcessEnv): string {
  if (platform === 'win32') return path.win32.join(env.APPDATA || path.win32.join(home, 'AppData', 'Roaming'), 'Finetune Studio')
  if (platform === 'darwin') return path.posix.join(home, 'Library', 'Application Support', 'Finetune Studio')
  return path.posix.join(env.XDG_DATA_HOME || path.posix.join(home, '.local', 'share'), 'finetune-studio')
}

export function databasePath(dataDir: string): string {
  return path.join(dataDir, DATABASE_FILE)
}
