import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { writeImageFolder } from '../generators/images'

const ROOT = path.resolve(__dirname, '../..')
const CLI = path.join(ROOT, 'bin/finetune-studio.cjs')
const run = promisify(execFile)

let dir: string
let dataDir: string

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [CLI, ...args, '--data-dir', dataDir], { cwd: ROOT, maxBuffer: 1 << 24 })
}

async function cliFailure(...args: string[]): Promise<{ code: number; stderr: string }> {
  return cli(...args).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => error
  )
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-cli-train-'))
  dataDir = path.join(dir, 'data')
  await writeImageFolder(path.join(dir, 'pets'), { classes: ['cat', 'dog'], perClass: 10, size: 32 })
  await writeImageFolder(path.join(dir, 'lonely'), { classes: ['only'], perClass: 4, size: 32 })
}, 60_000)

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const SMALL = ['--depth', '11', '--input-size', '32', '--fc-width', '16', '--dropout', '0', '--batch-size', '8', '--backend', 'wasm']

describe('finetune-studio train', () => {
  it('imports a class folder, trains, records the run, and ends with one JSON object', async () => {
    const { stdout } = await cli('train', '--data', path.join(dir, 'pets'), ...SMALL, '--epochs', '2', '--json')
    const result = JSON.parse(stdout.trim().split('\n').at(-1) as string)
    expect(result).toMatchObject({ status: 'completed', backend: 'wasm', epochs: 2, failureReason: null })
    expect(typeof result.runId).toBe('number')
    expect(result.final.trainLoss).toBeGreaterThan(0)
    expect(result.final.valAccuracy).toBeGreaterThanOrEqual(0)

    const again = JSON.parse((await cli('train', '--dataset', String(result.datasetId), ...SMALL, '--epochs', '1', '--json')).stdout.trim())
    expect(again.runId).toBeGreaterThan(result.runId)
  }, 240_000)

  it('shows progress on the terminal', async () => {
    const { stderr } = await cli('train', '--data', path.join(dir, 'pets'), ...SMALL, '--epochs', '1')
    expect(stderr).toMatch(/training on wasm: \d+ training and \d+ validation images/)
    expect(stderr).toMatch(/epoch 1 step \d+\/\d+ {2}loss \d/)
    expect(stderr).toMatch(/epoch 1 done in/)
  }, 240_000)

  it('refuses a dataset with one class and an input size that is not a multiple of 32', async () => {
    const lonely = await cliFailure('train', '--data', path.join(dir, 'lonely'), ...SMALL, '--epochs', '1')
    expect(lonely.code).toBe(1)
    expect(lonely.stderr).toMatch(/at least two classes/)
    const badSize = await cliFailure('train', '--data', path.join(dir, 'pets'), '--input-size', '48')
    expect(badSize.code).not.toBe(0)
    expect(badSize.stderr).toMatch(/--input-size.*multiple of 32/)
  }, 120_000)
})

describe('finetune-studio inspect', () => {
  it("prints a plan's totals as JSON", async () => {
    const { stdout } = await cli('inspect', '--classes', '10', '--input-size', '32', '--plan', 'head-only', '--json')
    const result = JSON.parse(stdout)
    expect(result.plan.layers.predictions).toBe('train+wn')
    expect(result.totals.params.trainable).toBeGreaterThan(0)
    expect(result.totals.params.trainable).toBeLessThan(result.totals.params.total)
    expect(result.problems).toEqual([])
  }, 60_000)
})
