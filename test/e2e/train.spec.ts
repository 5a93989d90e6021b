import { test, expect } from '@playwright/test'
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { callFromPage } from './page-api'
import { useQuickPlan } from './quick-plan'
// Brings the page's `window.__studioFrameStats` declaration (the page publishes frame times there).
import type {} from '../../src/renderer/src/composables/use-frame-stats'
import { startStudio, type RunningStudio } from './studio-server'
import { writeImageFolder } from '../generators/images'
import { setField, shot } from './ui-helpers'

const ROOT = path.resolve(__dirname, '../..')
let studio: RunningStudio
let shapesId: number
let lonely: string
const started = Date.now()
/** Seconds since the spec started, for the log of where the time goes. */
const mark = (what: string) => console.log(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`)

/** Imports a class-folder tree with the CLI, on the data directory the served studio uses. */
function importWithCli(dir: string): number {
  const out = execFileSync(process.execPath, [path.join(ROOT, 'bin/finetune-studio.cjs'), 'dataset', 'import', dir, '--data-dir', studio.dataDir, '--json'], {
    cwd: ROOT,
    encoding: 'utf8'
  })
  const result = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { datasetId: number; status: string; imported: number }
  expect(result.status).toBe('completed')
  return result.datasetId
}

test.beforeAll(async () => {
  studio = await startStudio()
  const shapes = path.join(studio.dataDir, 'incoming', 'shapes')
  lonely = path.join(studio.dataDir, 'incoming', 'lonely')
  await writeImageFolder(shapes, { classes: ['disc', 'square', 'stripes'], perClass: 8, size: 32, seed: 5 })
  await writeImageFolder(lonely, { classes: ['only'], perClass: 4, size: 32, seed: 6 })
  mark('studio up, images written')
  shapesId = importWithCli(shapes)
  mark('shapes imported with the CLI')
})

test.afterAll(async () => {
  await studio?.stop()
})



test('train from the Train view: live curves, completion, stop, runs list and compare, reload; a one-class dataset is refused at the picker', async ({ page }) => {
  test.setTimeout(120_000)
  await page.setViewportSize({ width: 1440, height: 1000 })
  await page.goto(studio.openUrl)
  // A one-class dataset, imported through the contract.
  const lonelyImport = await callFromPage(page, 'imports.start', { newDatasetName: 'lonely', source: { kind: 'folder', path: lonely } })
  const lonelyId = lonelyImport.datasetId
  await expect.poll(async () => (await callFromPage(page, 'datasets.list')).find((d) => d.id === lonelyId)?.labelledCount, { timeout: 20_000 }).toBe(4)

  await useQuickPlan(page, lonelyId, 3)
  await page.reload()
  await page.keyboard.press('Alt+4')
  await expect(page.getByRole('heading', { name: 'Train', level: 1 })).toBeVisible()
  await expect(page.getByTestId('no-run')).toBeVisible()
  await expect(page.getByTestId('train-backend')).toContainText(/CPU · wasm|GPU · CUDA|CPU · TensorFlow|CPU · JS/)

  // One class only: the backend refuses, and its message shows at the dataset picker.
  await expect(page.getByTestId('train-dataset-facts')).toContainText('1 class')
  await page.getByTestId('start-run').click()
  const datasetError = page.getByTestId('train-dataset-error')
  await expect(datasetError).toContainText('“lonely” has labelled images in one class only')
  await expect(datasetError).toContainText('at least two classes')
  await expect(page.getByTestId('start-problem')).toContainText('Not started: “lonely” has labelled images in one class only')
  await expect(page.getByTestId('run-panel')).toHaveCount(0)

  // Choosing the three-class dataset clears the message.
  await page.getByTestId('train-dataset').click()
  await page.locator('.n-base-select-option', { hasText: /^shapes/ }).click()
  await expect(datasetError).toBeHidden()
  expect(await page.evaluate(() => localStorage.getItem('finetune-studio:plan-dataset'))).toBe(String(shapesId))
  await expect(page.getByTestId('train-dataset-facts')).toContainText('3 classes')
  await expect(page.getByTestId('train-plan-title')).toHaveText('VGG16 @ 32×32')
  await expect(page.getByTestId('train-plan-trainable')).toContainText('parameters')

  // Hyperparameters: the schema's defaults, then a short run (batch 8, 2 epochs).
  const batch = page.getByTestId('hp-batchSize')
  const epochs = page.getByTestId('hp-epochs')
  await expect(batch).toHaveValue('32')
  await expect(epochs).toHaveValue('10')
  await expect(page.getByTestId('hp-learningRate')).toHaveValue('0.001')
  await setField(page, 'hp-batchSize', '8')
  await setField(page, 'hp-epochs', '2')
  await page.getByTestId('run-name').locator('input').fill('e2e shapes')

  mark('settings made')
  const t0 = Date.now()
  await page.getByTestId('start-run').click()
  const panel = page.getByTestId('run-panel')
  await expect(panel).toBeVisible()
  await expect(panel.getByRole('heading', { name: 'e2e shapes' })).toBeVisible()

  // Live: the step counter climbs and the curves are drawn with uPlot.
  const step = panel.getByTestId('run-step')
  await expect.poll(async () => Number(await step.getAttribute('data-value')), { timeout: 60_000 }).toBeGreaterThan(0)
  const firstStep = Number(await step.getAttribute('data-value'))
  await expect(panel.locator('[data-testid="uplot"] canvas')).toHaveCount(2)
  await expect.poll(async () => Number(await step.getAttribute('data-value')), { timeout: 60_000 }).toBeGreaterThan(firstStep)
  await expect(panel.getByTestId('run-speed')).toHaveText(/\d/)
  await expect(panel.getByTestId('run-lr')).toHaveText(/\d/)
  const beforeShot = await page.evaluate(() => window.__studioFrameStats)
  await shot(page, 'train-live.png', { fromTop: true })

  // The run ends completed; the UI stayed responsive throughout.
  await expect(panel.getByTestId('run-outcome')).toHaveAttribute('data-outcome', 'completed', { timeout: 60_000 })
  const seconds = (Date.now() - t0) / 1000
  const frames = await page.evaluate(() => window.__studioFrameStats)
  mark(`run 1 took ${seconds.toFixed(1)} s; frame times (ms) during training: ${JSON.stringify(frames)}; up to the live screenshot: ${JSON.stringify(beforeShot)}`)
  expect(frames?.frames).toBeGreaterThan(30)
  expect(frames?.p95).toBeLessThan(100)
  // The host's event loop stays free while the trainer works in its own process.
  const host = (await callFromPage(page, 'system.info')).eventLoopDelayMs
  mark(`host event-loop delay (ms) since start: ${JSON.stringify(host)}`)
  expect(host.p99).toBeLessThan(100)
  await expect(panel.getByTestId('run-status')).toHaveAttribute('data-status', 'completed')
  await expect(panel.getByTestId('run-epoch')).toHaveText('2')
  await expect(panel.getByTestId('progress-overall')).toHaveAttribute('aria-valuenow', '100')
  const steps = Number(await step.getAttribute('data-value'))
  expect(steps).toBeGreaterThanOrEqual(4)
  await expect(panel.getByTestId('run-val-acc')).toHaveText(/%$/)
  await shot(page, 'train.png', { fromTop: true })

  // Dark theme (the app follows the OS).
  await page.emulateMedia({ colorScheme: 'dark' })
  await shot(page, 'train-dark.png', { fromTop: true })
  await page.emulateMedia({ colorScheme: 'light' })

  // A second run, stopped once its first epoch is in: the outcome says "cancelled".
  const firstRunId = Number(await panel.getAttribute('data-run-id'))
  await setField(page, 'hp-epochs', '3')
  await setField(page, 'hp-learningRate', '0.0005')
  await page.getByTestId('run-name').locator('input').fill('e2e stopped')
  await page.getByTestId('start-run').click()
  await expect(panel.getByRole('heading', { name: 'e2e stopped' })).toBeVisible()
  await expect(panel.getByTestId('run-val-acc')).toHaveText(/%$/, { timeout: 60_000 })
  await panel.getByTestId('run-stop').click()
  await page.getByRole('button', { name: 'Stop the run' }).click()
  await expect(panel.getByTestId('run-outcome')).toHaveAttribute('data-outcome', 'cancelled', { timeout: 30_000 })
  await expect(panel.getByTestId('run-outcome')).toContainText('Stopped after 1 of 3 epochs')
  mark('run 2 stopped')
  const secondRunId = Number(await panel.getAttribute('data-run-id'))
  const secondSteps = Number(await step.getAttribute('data-value'))

  // The Runs view lists both, with their status; the one the Train view showed is open.
  await page.keyboard.press('Alt+5')
  await expect(page.getByRole('heading', { name: 'Runs', level: 1 })).toBeVisible()
  const rowOf = (id: number) => page.locator('tr', { has: page.getByTestId(`run-row-${id}`) })
  await expect(rowOf(firstRunId)).toContainText('e2e shapes')
  await expect(rowOf(firstRunId).getByTestId('run-status')).toHaveAttribute('data-status', 'completed')
  await expect(rowOf(firstRunId)).toContainText('shapes')
  await expect(rowOf(firstRunId)).toContainText('2 / 2')
  await expect(rowOf(secondRunId).getByTestId('run-status')).toHaveAttribute('data-status', 'cancelled')
  await expect(rowOf(secondRunId)).toContainText('1 / 3')
  await expect(page.getByTestId('run-detail')).toHaveAttribute('data-run-id', String(secondRunId))

  // Both ticked: their validation curves overlaid, and what differs between them.
  await page.getByTestId(`run-row-${firstRunId}`).click()
  const compare = page.getByTestId('compare-charts')
  await expect(compare.locator('canvas')).toHaveCount(2)
  const diff = page.getByTestId('spec-diff')
  await expect(diff.locator('tr[data-differs="true"]', { hasText: 'Epochs planned' })).toContainText('2')
  await expect(diff.locator('tr[data-differs="true"]', { hasText: 'Epochs planned' })).toContainText('3')
  await shot(page, 'runs-compare.png', { fromTop: true })
  await page.emulateMedia({ colorScheme: 'dark' })
  await shot(page, 'runs-compare-dark.png', { fromTop: true })
  await page.emulateMedia({ colorScheme: 'light' })

  // The completed one alone: its curves.
  await page.getByTestId(`run-row-${secondRunId}`).click()
  const detail = page.getByTestId('run-detail')
  await expect(detail).toHaveAttribute('data-run-id', String(firstRunId))
  await expect(detail.locator('[data-testid="uplot"] canvas')).toHaveCount(2)
  await shot(page, 'runs.png', { fromTop: true })

  mark('runs view checked')
  // After a reload the runs and their curves are still there (read back from runs.metrics).
  await page.reload()
  await expect(page.getByTestId('run-detail')).toHaveAttribute('data-run-id', String(secondRunId))
  await expect(page.getByTestId('run-detail').getByTestId('run-step')).toHaveAttribute('data-value', String(secondSteps))
  await page.getByTestId(`run-row-${firstRunId}`).click()
  await page.getByTestId(`run-row-${secondRunId}`).click()
  await expect(page.getByTestId('run-detail')).toHaveAttribute('data-run-id', String(firstRunId))
  await expect(page.getByTestId('run-detail').getByTestId('run-step')).toHaveAttribute('data-value', String(steps))
  await expect(page.getByTestId('run-detail').locator('[data-testid="uplot"] canvas')).toHaveCount(2)
  await page.getByTestId('open-in-train').click()
  await expect(page.getByRole('heading', { name: 'Train', level: 1 })).toBeVisible()
  await expect(page.getByTestId('run-panel')).toHaveAttribute('data-run-id', String(firstRunId))
  await expect(page.getByTestId('run-panel').getByTestId('run-outcome')).toHaveAttribute('data-outcome', 'completed')
  await expect(page.getByTestId('run-panel').getByTestId('run-step')).toHaveAttribute('data-value', String(steps))
  const stored = await callFromPage(page, 'runs.metrics', { runId: firstRunId, names: ['step/loss', 'epoch/valAccuracy'] })
  expect(stored.find((s) => s.name === 'step/loss')?.points).toHaveLength(steps)
  expect(stored.find((s) => s.name === 'epoch/valAccuracy')?.points.map((p) => p.epoch)).toEqual([1, 2])
})

test('a new user, with no dataset and no run, is told what to do first', async ({ page }) => {
  const fresh = await startStudio()
  try {
    await page.setViewportSize({ width: 1440, height: 800 })
    await page.goto(fresh.openUrl)
    await page.keyboard.press('Alt+4')
    const empty = page.getByTestId('train-empty')
    await expect(empty).toContainText('Nothing to train yet')
    await expect(empty.getByRole('button', { name: /Import images/ })).toBeVisible()
    await expect(empty.getByRole('button', { name: /Pick layers/ })).toBeVisible()
    await shot(page, 'train-empty.png', { fromTop: true })
    await page.keyboard.press('Alt+5')
    await expect(page.getByTestId('runs-empty')).toContainText('No runs yet')
    await page.getByTestId('runs-empty').getByRole('button', { name: /Import a dataset/ }).click()
    await expect(page.getByRole('heading', { name: 'Datasets', level: 1 })).toBeVisible()
  } finally {
    await fresh.stop()
  }
})
