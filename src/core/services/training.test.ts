import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Studio } from './studio'
import type { MethodInput, MethodName, MethodResult } from '../../shared/api'
import type { LayerPlan } from '../../shared/layer-plan-schema'
import type { RunProgress, RunStatus } from '../../shared/training'
import { writeImageFolder } from '../../../test/generators/images'
import { forkTrainer } from '../engine/trainer-process'

let root: string
let studio: Studio
let datasetId: number
let plan: LayerPlan
/** Kills the next trainer it launches once that trainer reports its first step. */
let killAfterFirstStep = false

async function call<M extends MethodName>(method: M, input?: MethodInput<M>): Promise<MethodResult<M>> {
  const outcome = await studio.call(method, input)
  if (!outcome.ok) throw new Error(`${outcome.error.code}: ${outcome.error.message}`)
  return outcome.result as MethodResult<M>
}

function progressOf(runId: () => number | undefined): RunProgress[] {
  const seen: RunProgress[] = []
  studio.onEvent((e) => {
    if (e.event === 'run.progress' && e.payload.runId === runId()) seen.push(e.payload)
  })
  return seen
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-train-'))
  studio = await Studio.open({
    dataDir: path.join(root, 'data'),
    transport: 'cli',
    heartbeatSeconds: 0,
    launchTrainer: () => {
      const handle = forkTrainer()
      if (killAfterFirstStep) {
        killAfterFirstStep = false
        const off = handle.onMessage((m) => {
          if (m.type === 'step') {
            off()
            handle.kill('SIGKILL')
          }
        })
      }
      return handle
    }
  })
  const folder = path.join(root, 'shapes')
  await writeImageFolder(folder, { classes: ['disc', 'square', 'stripes'], perClass: 10, size: 32 })
  const imported = await studio.imports.runToEnd({ newDatasetName: 'shapes' }, { kind: 'folder', path: folder })
  datasetId = imported.datasetId
  plan = await call('plans.make', { preset: 'last-block-head', numClasses: 3, depth: 11, inputSize: 32, fcWidth: 32, dropout: 0, weightNorm: 'trained' })
}, 120_000)

afterAll(async () => {
  await studio.close()
  fs.rmSync(root, { recursive: true, force: true })
})

const quick = { epochs: 2, batchSize: 8, learningRate: 0.01, optimizer: 'adam' as const, schedule: 'constant' as const }

describe('training runs', () => {
  it('trains in a child process, streams progress, and records metrics, checkpoints and status', async () => {
    const current: { runId?: number } = {}
    const progress = progressOf(() => current.runId)
    const started = await call('runs.start', { datasetId, plan, weightsPath: null, hyperparameters: quick, backend: 'wasm' })
    current.runId = started.id
    expect(started.status).toBe('queued')
    expect(await studio.training.settled(started.id)).toBe('completed')

    const run = await call('runs.get', { runId: started.id })
    expect(run).toMatchObject({ status: 'completed', backend: 'wasm', epochs: 2, epochsCompleted: 2, failureReason: null })
    expect(run.latest?.valLoss).not.toBeNull()

    const types = progress.map((p) => p.type)
    expect(types[0]).not.toBe('step')
    expect(types).toContain('started')
    expect(types.filter((t) => t === 'epoch')).toHaveLength(2)
    expect(progress.at(-1)).toMatchObject({ type: 'status', status: 'completed' })
    const steps = progress.filter((p): p is Extract<RunProgress, { type: 'step' }> => p.type === 'step')
    expect(steps.length).toBeGreaterThanOrEqual(2)
    expect(steps[0].stepsPerEpoch).toBeGreaterThan(0)

    const series = await call('runs.metrics', { runId: started.id, names: ['step/loss', 'epoch/valAccuracy'] })
    expect(series.find((s) => s.name === 'step/loss')?.points).toHaveLength(steps.length)
    expect(series.find((s) => s.name === 'epoch/valAccuracy')?.points.map((p) => p.epoch)).toEqual([1, 2])
    const checkpoints = await studio.db.all<{ epoch: number; path: string }>('SELECT epoch, path FROM checkpoints WHERE run_id = ? ORDER BY epoch', [started.id])
    expect(checkpoints.length).toBeGreaterThanOrEqual(1)
  }, 180_000)

  it('stops a run on request and marks it cancelled', async () => {
    const current: { runId?: number } = {}
    const progress = progressOf(() => current.runId)
    const started = await call('runs.start', { datasetId, plan, weightsPath: null, hyperparameters: { ...quick, epochs: 50 }, backend: 'wasm' })
    current.runId = started.id
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (progress.some((p) => p.type === 'step')) {
          clearInterval(timer)
          resolve()
        }
      }, 20)
    })
    expect(await call('runs.stop', { runId: started.id })).toEqual({ ok: true })
    expect(await studio.training.settled(started.id)).toBe('cancelled')
    expect((await call('runs.get', { runId: started.id })).status).toBe('cancelled')
  }, 180_000)

  it('marks a run whose trainer died as failed, with the reason', async () => {
    killAfterFirstStep = true
    const started = await call('runs.start', { datasetId, plan, weightsPath: null, hyperparameters: quick, backend: 'wasm' })
    const status: RunStatus = await studio.training.settled(started.id)
    expect(status).toBe('failed')
    const run = await call('runs.get', { runId: started.id })
    expect(run.failureReason).toMatch(/stopped unexpectedly \(signal SIGKILL\)/)
    expect((await studio.db.get<{ integrity_check: string }>('PRAGMA integrity_check'))?.integrity_check).toBe('ok')
  }, 180_000)

  it('refuses a plan whose head does not match the dataset, naming the field', async () => {
    const outcome = await studio.call('runs.start', { datasetId, plan: { ...plan, numClasses: 5 }, weightsPath: null })
    expect(outcome).toMatchObject({ ok: false, error: { code: 'invalid_input', fields: [{ path: 'plan.numClasses' }] } })
  })

  it('refuses a dataset with fewer than two labelled classes', async () => {
    const lonely = await call('datasets.create', { name: 'lonely' })
    const outcome = await studio.call('runs.start', { datasetId: lonely.id, plan, weightsPath: null })
    expect(outcome).toMatchObject({ ok: false, error: { code: 'invalid_input', fields: [{ path: 'datasetId' }] } })
    if (!outcome.ok) expect(outcome.error.message).toMatch(/at least two classes/)
  })
})
