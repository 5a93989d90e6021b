import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { GeneratedImage } from '../../../test/generators/images'
import { evaluateModel, evaluationReport, folderEvaluationItems } from './evaluate'
import { loadModelFromPath, type LoadedModel } from './load-trained-model'
import { predictImage } from './predict'
import { trainSmallModel } from './trainer-fixture'

const CLASSES = ['disc', 'square', 'stripes']
const TRAINED_WN = ['fc1', 'fc2', 'predictions']

let root: string
let images: GeneratedImage[]
let loaded: LoadedModel

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-evaluate-'))
  const run = await trainSmallModel(root, { runId: 'evaluate-test', classes: CLASSES, perClass: 4, trained: TRAINED_WN, dropout: 0, learningRate: 0.01, batchSize: 4, seed: 5 })
  images = run.images
  const result = run.result
  result.model.dispose()
  loaded = await loadModelFromPath(result.finalCheckpoint as string)
}, 60_000)

afterAll(() => {
  loaded?.model.dispose()
  fs.rmSync(root, { recursive: true, force: true })
})

describe('evaluationReport', () => {
  it('computes accuracy, per-class precision/recall/F1/support and the confusion matrix (rows true, columns predicted)', () => {
    // true:      a a a a b b c c c c
    // predicted: a a b c b a c c c b
    const labels = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    const predicted = [0, 0, 1, 2, 1, 0, 2, 2, 2, 1]
    const report = evaluationReport(['a', 'b', 'c'], labels, predicted)
    expect(report.count).toBe(10)
    expect(report.accuracy).toBeCloseTo(6 / 10, 12)
    expect(report.confusionMatrix).toEqual([
      [2, 1, 1],
      [1, 1, 0],
      [0, 1, 3]
    ])
    const [a, b, c] = report.perClass
    expect(a).toMatchObject({ class: 'a', support: 4, predicted: 3 })
    expect(a.precision).toBeCloseTo(2 / 3, 12)
    expect(a.recall).toBeCloseTo(2 / 4, 12)
    expect(a.f1).toBeCloseTo((2 * (2 / 3) * 0.5) / (2 / 3 + 0.5), 12)
    expect(b).toMatchObject({ class: 'b', support: 2, predicted: 3 })
    expect(b.precision).toBeCloseTo(1 / 3, 12)
    expect(b.recall).toBeCloseTo(1 / 2, 12)
    expect(c).toMatchObject({ class: 'c', support: 4, predicted: 4, precision: 3 / 4, recall: 3 / 4, f1: 3 / 4 })
    expect(report.macro.recall).toBeCloseTo((0.5 + 0.5 + 0.75) / 3, 12)
  })

  it('gives a class that is never predicted precision 0, not NaN', () => {
    const report = evaluationReport(['a', 'b'], [0, 1], [0, 0])
    expect(report.perClass[1]).toMatchObject({ precision: 0, recall: 0, f1: 0, support: 1, predicted: 0 })
  })
})

describe('evaluate on a folder of class subfolders', () => {
  it('counts every image once and agrees with a hand count of single-image predictions', async () => {
    const items = await folderEvaluationItems(path.join(root, 'images'), loaded.classNames)
    expect(items).toHaveLength(12)
    const report = await evaluateModel(loaded, items, { batchSize: 5 })
    expect(report.classNames).toEqual(CLASSES)
    expect(report.confusionMatrix.flat().reduce((a, b) => a + b, 0)).toBe(12)

    // Hand count: one image at a time through predict, then tally.
    const matrix = CLASSES.map(() => CLASSES.map(() => 0))
    for (const image of images) {
      const top = (await predictImage(loaded, image.path, { top: 1 })).top[0]
      matrix[CLASSES.indexOf(image.label)][top.index]++
    }
    expect(report.confusionMatrix).toEqual(matrix)
    CLASSES.forEach((name, k) => {
      const tp = matrix[k][k]
      const support = matrix[k].reduce((a, b) => a + b, 0)
      const predicted = matrix.reduce((a, row) => a + row[k], 0)
      const entry = report.perClass[k]
      expect(entry.class).toBe(name)
      expect(entry.support).toBe(4)
      expect(entry.support).toBe(support)
      expect(entry.recall).toBeCloseTo(tp / support, 12)
      expect(entry.precision).toBeCloseTo(predicted === 0 ? 0 : tp / predicted, 12)
    })
    expect(report.accuracy).toBeCloseTo(CLASSES.reduce((a, _, k) => a + matrix[k][k], 0) / 12, 12)
  })

  it('accepts a folder with only some of the classes', async () => {
    const partial = path.join(root, 'partial')
    fs.mkdirSync(partial)
    fs.cpSync(path.join(root, 'images', 'square'), path.join(partial, 'square'), { recursive: true })
    const report = await evaluateModel(loaded, await folderEvaluationItems(partial, loaded.classNames))
    expect(report.perClass.map((c) => c.support)).toEqual([0, 4, 0])
    expect(report.confusionMatrix[1].reduce((a, b) => a + b, 0)).toBe(4)
  })

  it('names a folder that is not one of the model\'s classes', async () => {
    const odd = path.join(root, 'odd')
    fs.cpSync(path.join(root, 'images'), odd, { recursive: true })
    fs.mkdirSync(path.join(odd, 'triangle'))
    await expect(folderEvaluationItems(odd, loaded.classNames)).rejects.toThrow(
      `${path.join(odd, 'triangle')}: folder "triangle" is not one of the model's classes (disc, square, stripes)`
    )
  })
})
