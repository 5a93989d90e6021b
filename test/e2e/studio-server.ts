import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export interface RunningStudio {
  /** The address with the access token, as printed for the user. */
  openUrl: string
  origin: string
  dataDir: string
  output: () => string
  stop(): Promise<void>
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
    output: () => output,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      })
  }
}
