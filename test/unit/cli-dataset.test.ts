import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { spawn, execFile } from 'node:child_process'
import { promisify } from 'node:util'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Database } from '../../src/core/store/db'
import { writeImageFolder, writeTruncatedJpeg } from '../generators/images'

const ROOT = path.resolve(__dirname, '../..')
const CLI = path.join(ROOT, 'bin/finetune-studio.cjs')
const run = promisify(execFile)

let dir: string
let dataDir: string
let images: string

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, ...args, '--data-dir', dataDir], { cwd: ROOT, maxBuffer: 1 << 24 })
  return stdout
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-cli-'))
  dataDir = path.join(dir, 'data')
  images = path.join(dir, 'pets')
  await writeImageFolder(images, { classes: ['cat', 'dog'], perClass: 200, size: 64 })
  await writeTruncatedJpeg(path.join(images, 'cat', 'broken.jpg'))
}, 120_000)

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

describe('finetune-studio dataset', () => {
  it('survives being killed mid-import: the database stays consistent and a second run completes it', async () => {
    const child = spawn(process.execPath, [CLI, 'dataset', 'import', images, '--data-dir', dataDir], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
    let progress = ''
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d) => {
        progress += d
        // Kill it once at least one batch is committed, well before the end.
        const match = /(\d+)\/401 files \((\d+) new/.exec(progress.split('\r').pop() ?? '')
        if (match && Number(match[2]) >= 64 && Number(match[1]) < 380) {
          child.kill('SIGKILL')
          resolve()
        }
      })
      child.on('exit', () => reject(new Error(`import ended before it could be killed:\n${progress}`)))
    })
    await new Promise((r) => child.once('exit', r))

    const db = await Database.open(path.join(dataDir, 'studio.sqlite'))
    expect(await db.get('PRAGMA integrity_check')).toEqual({ integrity_check: 'ok' })
    const partial = (await db.get<{ n: number }>('SELECT count(*) AS n FROM images'))?.n ?? 0
    expect(partial).toBeGreaterThan(0)
    expect(partial).toBeLessThan(400)
    await db.close()

    const result = JSON.parse(await cli('dataset', 'import', images, '--json'))
    expect(result.status).toBe('completed')
    expect(result.imported + result.alreadyPresent).toBe(400)
    expect(result.alreadyPresent).toBe(partial)
    expect(result.rejected).toEqual([{ file: path.join(images, 'cat', 'broken.jpg'), reason: expect.stringMatching(/truncated|corrupt/i) }])

    const stats = JSON.parse(await cli('dataset', 'stats', String(result.datasetId), '--json'))
    expect(stats.total).toBe(400)
    expect(stats.classes.map((c: { name: string; count: number }) => [c.name, c.count])).toEqual([
      ['cat', 200],
      ['dog', 200]
    ])
    const list = JSON.parse(await cli('dataset', 'list', '--json'))
    expect(list).toHaveLength(1)
    expect(list[0]).toMatchObject({ name: 'pets', imageCount: 400, labelledCount: 400, classCount: 2 })
  }, 180_000)

  it('exports the labelled images as class folders', async () => {
    const out = path.join(dir, 'export')
    const result = JSON.parse(await cli('dataset', 'export', '1', out, '--json'))
    expect(result).toMatchObject({ exported: 400, classes: 2, failed: [] })
    expect(fs.readdirSync(path.join(out, 'dog'))).toHaveLength(200)
  }, 60_000)

  it('says clearly when the folder to import does not exist', async () => {
    const error = await cli('dataset', 'import', path.join(dir, 'missing')).catch((e: { stderr: string; code: number }) => e)
    expect(typeof error).toBe('object')
    expect((error as { code: number }).code).toBe(1)
    expect((error as { stderr: string }).stderr).toContain(path.join(dir, 'missing'))
    expect(JSON.parse(await cli('dataset', 'list', '--json')).map((d: { name: string }) => d.name)).toEqual(['pets'])
  }, 60_000)
})
