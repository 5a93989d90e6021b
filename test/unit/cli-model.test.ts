import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { planLayerNames } from '../../src/shared/layer-plan-schema'
import { hyperparametersSchema } from '../../src/shared/training'
import { lrMultiplierOf, toBuildOptions } from '../../src/core/model/layer-plan'
import { Studio } from '../../src/core/services/studio'
import { createRun, setRunStatus } from '../../src/core/store/runs-repo'
import { createSnapshot } from '../../src/core/store/snapshots-repo'
import { train } from '../../src/core/engine/trainer'
import type { TrainerSpecInput } from '../../src/core/engine/trainer-spec'
import { writeImageFolder, writeTextAsJpg, type GeneratedImage } from '../generators/images'
import { randomVggWeights, writeTorchSafetensors } from '../generators/vgg-weight-files'

const ROOT = path.resolve(__dirname, '../..')
const CLI = path.join(ROOT, 'bin/finetune-studio.cjs')
const execute = promisify(execFile)
const CLASSES = ['disc', 'square']

let dir: string
let dataDir: string
let folder: string
let images: GeneratedImage[]
let runId: number
let testCounts: number[]

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await execute(process.execPath, [CLI, ...args, '--data-dir', dataDir], { cwd: ROOT, maxBuffer: 1 << 24 })
  return stdout
}

async function cliJson<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  return JSON.parse(await cli(...args, '--json')) as T
}

async function cliFailure(...args: string[]): Promise<{ code: number; stderr: string }> {
  return cli(...args).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => error
  )
}

interface Top {
  index: number
  label: string
  probability: number
  logit: number
}

/** Same ranking, probabilities within 1e-4, logits within 1e-4 relative. */
function expectSamePrediction(actual: Top[], expected: Top[]): void {
  expect(actual.map((t) => t.index)).toEqual(expected.map((t) => t.index))
  expect(actual.map((t) => t.label)).toEqual(expected.map((t) => t.label))
  const scale = Math.max(...expected.map((t) => Math.abs(t.logit)))
  actual.forEach((t, i) => {
    expect(Math.abs(t.probability - expected[i].probability)).toBeLessThan(1e-4)
    expect(Math.abs(t.logit - expected[i].logit)).toBeLessThan(1e-4 * scale)
  })
}

/**
 * A trained run as the studio records one, without the trainer child process: a dataset
 * imported and split half train / half test, its snapshot, a run row whose spec has the shape the
 * training service stores, one epoch trained in-process, and its checkpoint and final weights.
 */
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-cli-model-'))
  dataDir = path.join(dir, 'data')
  folder = path.join(dir, 'shapes')
  images = await writeImageFolder(folder, { classes: CLASSES, perClass: 6, size: 32 })
  const studio = await Studio.open({ dataDir, transport: 'cli', heartbeatSeconds: 0 })
  try {
    const { datasetId } = await studio.imports.runToEnd({ newDatasetName: 'shapes' }, { kind: 'folder', path: folder })
    const split = await studio.call('datasets.configureSplits', { datasetId, ratios: { train: 0.5, validation: 0, test: 0.5 }, seed: 1 })
    if (!split.ok) throw new Error(split.error.message)
    const made = await studio.call('plans.make', { preset: 'last-block-head', numClasses: 2, depth: 11, inputSize: 32, fcWidth: 16, dropout: 0, weightNorm: 'trained' })
    if (!made.ok) throw new Error(made.error.message)
    const plan = made.result as Parameters<typeof toBuildOptions>[0]
    const snapshot = await createSnapshot(studio.db, datasetId)
    expect(snapshot.classNames).toEqual(CLASSES)
    testCounts = CLASSES.map((_, k) => snapshot.items.filter((i) => i.split === 'test' && i.label === k).length)
    expect(Math.min(...testCounts)).toBeGreaterThan(0)

    const hyperparameters = hyperparametersSchema.parse({ epochs: 1, batchSize: 6, learningRate: 0.001, optimizer: 'adam', schedule: 'constant', augmentation: { flip: false } })
    const build = toBuildOptions(plan)
    const names = planLayerNames(11)
    const trainer: Omit<TrainerSpecInput, 'runId' | 'checkpointDir'> = {
      model: {
        depth: 11,
        inputSize: 32,
        numClasses: 2,
        fcWidth: plan.fcWidth,
        dropout: plan.dropout,
        weightNorm: names.filter((n) => build.weightNorm.has(n)),
        trainable: names.filter((n) => build.trainable.has(n)),
        lrMultipliers: Object.fromEntries(names.map((n) => [n, lrMultiplierOf(plan, n)]))
      },
      weights: null,
      data: { classNames: snapshot.classNames, items: snapshot.items.filter((i) => i.split !== 'test').map((i) => ({ path: i.path, label: i.label, split: 'train' as const })) },
      optimizer: { kind: 'adam', learningRate: hyperparameters.learningRate },
      schedule: { kind: 'constant', warmupEpochs: 0 },
      batchSize: hyperparameters.batchSize,
      epochs: 1,
      seed: 1,
      earlyStopping: null,
      classWeights: 'none',
      augmentation: hyperparameters.augmentation,
      checkpointRetention: 'last-and-best',
      backend: 'wasm'
    }
    const stored = { plan, weightsPath: null, hyperparameters, trainer: { ...trainer, runId: 'pending', checkpointDir: 'pending' } }
    const run = await createRun(studio.db, { name: 'VGG11 @32', spec: stored, datasetId, snapshotId: snapshot.id })
    runId = run.id
    const spec: TrainerSpecInput = { ...trainer, runId: String(run.id), checkpointDir: path.join(dataDir, 'runs', String(run.id), 'checkpoints') }
    await studio.db.run('UPDATE runs SET spec = ? WHERE id = ?', [JSON.stringify({ ...stored, trainer: spec }), run.id])
    const result = await train(spec)
    result.model.dispose()
    const final = result.finalCheckpoint as string
    await studio.db.run('INSERT INTO checkpoints (run_id, epoch, step, path, bytes) VALUES (?, 1, 1, ?, 0)', [run.id, final])
    await studio.db.run("INSERT INTO artifacts (run_id, kind, path, meta) VALUES (?, 'final-weights', ?, '{}')", [run.id, final])
    await setRunStatus(studio.db, run.id, 'completed', { backend: result.backend })
  } finally {
    await studio.close()
  }
}, 120_000)

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

describe('finetune-studio predict and export', () => {
  it('predicts with a run; --weight-norm all gives the same output; exports in both formats predict the same', async () => {
    const image = images[0].path
    const tfjsDir = path.join(dir, 'export-tfjs')
    const stDir = path.join(dir, 'export-st')
    const [asTrained, allWn, tfjsExport, stExport] = await Promise.all([
      cliJson<{ top: Top[]; model: { weightNorm: string[] } }>('predict', '--run', String(runId), '--image', image),
      cliJson<{ top: Top[]; model: { weightNorm: string[] } }>('predict', '--run', String(runId), '--image', image, '--weight-norm', 'all'),
      cliJson<{ format: string; files: string[]; dir: string; runId: number }>('export', '--run', String(runId), '--format', 'tfjs', '--out', tfjsDir),
      cliJson<{ format: string; files: string[]; dir: string }>('export', '--run', String(runId), '--format', 'safetensors', '--out', stDir)
    ])
    expect(asTrained.top).toHaveLength(2)
    expect(asTrained.top.map((t) => t.label).sort()).toEqual(CLASSES)
    expect(asTrained.top[0].probability).toBeGreaterThanOrEqual(asTrained.top[1].probability)
    expect(asTrained.top[0].probability + asTrained.top[1].probability).toBeCloseTo(1, 6)
    expect(asTrained.model.weightNorm).toContain('predictions')
    expect(allWn.model.weightNorm).toHaveLength(11)
    expectSamePrediction(allWn.top, asTrained.top)

    expect(tfjsExport).toMatchObject({ format: 'tfjs', dir: tfjsDir, runId })
    expect(tfjsExport.files[0]).toBe('model.json')
    const modelJson = JSON.parse(fs.readFileSync(path.join(tfjsDir, 'model.json'), 'utf8'))
    expect(JSON.stringify(modelJson.modelTopology)).not.toMatch(/WeightNorm/)
    expect(modelJson.userDefinedMetadata).toMatchObject({ classNames: CLASSES, inputSize: 32, sourceRunId: runId, preprocessing: { kind: 'torchvision' } })
    expect(stExport).toMatchObject({ format: 'safetensors', files: ['model.safetensors'] })

    const [fromTfjs, fromSafetensors] = await Promise.all([
      cliJson<{ top: Top[]; model: { source: string } }>('predict', '--weights', tfjsDir, '--image', image),
      cliJson<{ top: Top[]; model: { source: string } }>('predict', '--weights', path.join(stDir, 'model.safetensors'), '--image', image, '--top', '1', '--weight-norm', 'none')
    ])
    expect(fromTfjs.model.source).toBe('tfjs-export')
    expect(fromSafetensors.model.source).toBe('safetensors-export')
    expectSamePrediction(fromTfjs.top, asTrained.top)
    expectSamePrediction(fromSafetensors.top, asTrained.top.slice(0, 1))
  }, 180_000)
})

interface Report {
  count: number
  accuracy: number
  classNames: string[]
  perClass: { class: string; precision: number; recall: number; f1: number; support: number }[]
  confusionMatrix: number[][]
}

function checkReport(report: Report, supports: number[]): void {
  expect(report.classNames).toEqual(CLASSES)
  expect(report.perClass.map((c) => c.class)).toEqual(CLASSES)
  expect(report.perClass.map((c) => c.support)).toEqual(supports)
  const total = supports.reduce((a, b) => a + b, 0)
  expect(report.count).toBe(total)
  expect(report.confusionMatrix.flat().reduce((a, b) => a + b, 0)).toBe(total)
  report.confusionMatrix.forEach((row, t) => expect(row.reduce((a, b) => a + b, 0)).toBe(supports[t]))
  const correct = report.confusionMatrix.reduce((a, row, t) => a + row[t], 0)
  expect(report.accuracy).toBeCloseTo(correct / total, 12)
  report.perClass.forEach((c, k) => {
    const predicted = report.confusionMatrix.reduce((a, row) => a + row[k], 0)
    expect(c.recall).toBeCloseTo(report.confusionMatrix[k][k] / supports[k], 12)
    expect(c.precision).toBeCloseTo(predicted === 0 ? 0 : report.confusionMatrix[k][k] / predicted, 12)
  })
}

describe('finetune-studio evaluate', () => {
  it("reports on the run's held-out test split by default, on a dataset's split, and on a folder", async () => {
    const [bySnapshot, byDatasetText, byFolder] = await Promise.all([
      cliJson<Report>('evaluate', '--run', String(runId)),
      cli('evaluate', '--run', String(runId), '--dataset', '1'),
      cliJson<Report>('evaluate', '--run', String(runId), '--data', folder)
    ])
    checkReport(bySnapshot, testCounts)
    checkReport(byFolder, [6, 6])
    // The same images as the snapshot's test split (nothing was relabelled), as a table.
    const total = testCounts[0] + testCounts[1]
    expect(byDatasetText).toContain(`accuracy ${(100 * bySnapshot.accuracy).toFixed(2)}% on ${total} images`)
    expect(byDatasetText).toMatch(/confusion matrix \(rows: true class, columns: predicted\)\n\s+disc\s+square\ndisc\s+\d+\s+\d+\nsquare\s+\d+\s+\d+/)
    const rows = byDatasetText.split('\n').filter((l) => /^(disc|square)\s+\d+\s+\d+$/.test(l)).map((l) => l.trim().split(/\s+/).slice(1).map(Number))
    expect(rows).toEqual(bySnapshot.confusionMatrix)
  }, 120_000)
})

describe('errors', () => {
  it('names an undecodable image, a bad --input-size, an unknown class folder and notop weights', async () => {
    const bad = await writeTextAsJpg(path.join(dir, 'not-a-photo.jpg'))
    const odd = path.join(dir, 'odd')
    fs.mkdirSync(path.join(odd, 'triangle'), { recursive: true })
    fs.cpSync(path.join(folder, 'disc'), path.join(odd, 'disc'), { recursive: true })
    const notop = path.join(dir, 'vgg11-notop.safetensors')
    await writeTorchSafetensors(notop, randomVggWeights({ depth: 11, top: 'notop' }), { flavor: 'torchvision', depth: 11 })

    const [image, notMultiple, wrongSize, unknownFolder, noHead, noModel] = await Promise.all([
      cliFailure('predict', '--run', String(runId), '--image', bad),
      cliFailure('predict', '--run', String(runId), '--image', images[0].path, '--input-size', '100'),
      cliFailure('predict', '--run', String(runId), '--image', images[0].path, '--input-size', '64'),
      cliFailure('evaluate', '--run', String(runId), '--data', odd),
      cliFailure('predict', '--weights', notop, '--image', images[0].path, '--backend', 'cpu'),
      cliFailure('predict', '--image', images[0].path)
    ])
    expect(image.code).toBe(1)
    expect(image.stderr).toContain(`cannot decode image ${bad}: not an image`)
    expect(notMultiple.code).not.toBe(0)
    expect(notMultiple.stderr).toMatch(/--input-size.*multiple of 32/)
    expect(wrongSize.code).toBe(1)
    expect(wrongSize.stderr).toMatch(/--input-size 64:? .*takes 32x32 images/)
    expect(unknownFolder.code).toBe(1)
    expect(unknownFolder.stderr).toContain(`${path.join(odd, 'triangle')}: folder "triangle" is not one of the model's classes (disc, square)`)
    expect(noHead.code).toBe(1)
    expect(noHead.stderr).toMatch(/vgg11-notop\.safetensors has no classifier head \(notop/)
    expect(noModel.code).toBe(1)
    expect(noModel.stderr).toMatch(/give either --run ID or --weights/)
  }, 120_000)
})
