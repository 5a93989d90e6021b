import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export interface RunningStudio {
  /** The address with the access token, as printed for the user. */
  openUrl: string
  origin: string
  dataDir: string
  /** The studio's own process. */
  pid: number
  output: () => string
  stop(): Promise<void>
}

/** Processes below `pid` (children, their children, ...), read from /proc (Linux). */
export function descendantPids(pid: number): number[] {
  const parentOf = new Map<number, number>()
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // Field 4 of /proc/<pid>/stat, after the command name in parentheses (which may hold spaces).
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8')
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = []
  const queue = [pid]
  while (queue.length) {
    const parent = queue.shift() as number
    for (const [child, p] of parentOf) {
      if (p === parent) {
        found.push(child)
        queue.push(child)
      }
    }
  }
  return found
}

/** The studio's trainer child processes: forkTrainer starts them with FINETUNE_STUDIO_TRAINER=1 (TRAINER_ENV in trainer-process.ts). */
export function trainerPids(studio: RunningStudio): number[] {
  return descendantPids(studio.pid).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('FINETUNE_STUDIO_TRAINER=1')
    } catch {
      return false
    }
  })
}

const ROOT = path.resolve(__dirname, '../..')

/** Starts `finetune-studio serve` exactly as a user would, on a fresh data directory. */
export function startStudio(extraArgs: string[] = []): Promise<RunningStudio> {
  return launch([path.join(ROOT, 'bin/finetune-studio.cjs'), 'serve'], extraArgs)
}

/** Runs a Node script of ours with web-mode flags and waits for the line announcing the address. */
export async function launch(script: string[], extraArgs: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<RunningStudio> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-e2e-'))
  const child: ChildProcess = spawn(process.execPath, [...script, '--no-open', '--port', '0', '--data-dir', dataDir, ...extraArgs], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout?.on('data', (d) => (output += d))
  child.stderr?.on('data', (d) => (output += d))
  const openUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`studio did not start in 90 s:\n${output}`)), 90_000)
    const poll = setInterval(() => {
      const match = /is at (http:\/\/\S+)/.exec(output)
      if (match) {
        clearInterval(poll)
        clearTimeout(timer)
        resolve(match[1])
      }
    }, 50)
    child.once('exit', (code) => {
      clearInterval(poll)
      clearTimeout(timer)
      reject(new Error(`studio exited with ${code}:\n${output}`))
    })
  })
  return {
    openUrl,
    origin: new URL(openUrl).origin,
    dataDir,
    pid: child.pid as number,
    output: () => output,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      })
  }
}
