/**
 * Controlling a run from the browser: pause and resume (the status says paused and progress
 * stops, then goes on), and a trainer process that dies (killed for real, by its pid) leaves
 * the run failed with the reason, also after a reload.
 */
import { test, expect, type Page } from '@playwright/test'
import path from 'node:path'
import { callFromPage } from './page-api'
import { useQuickPlan } from './quick-plan'
import { startStudio, trainerPids, type RunningStudio } from './studio-server'
import { writeImageFolder } from '../generators/images'
import { setField, shot } from './ui-helpers'

let studio: RunningStudio
let datasetId: number

test.describe.configure({ mode: 'serial' })

test.beforeAll(async () => {
  studio = await startStudio()
  await writeImageFolder(path.join(studio.dataDir, 'incoming', 'shapes'), { classes: 3, perClass: 8, size: 32, seed: 41 })
})

test.afterAll(async () => {
  await studio?.stop()
})

/** The Train view with the quick plan on the shapes dataset, and a run of `epochs` epochs in batches of 2 started. */
async function startRun(page: Page, name: string, epochs: number) {
  await page.goto(studio.openUrl)
  if (!datasetId) {
    const started = await callFromPage(page, 'imports.start', { newDatasetName: 'shapes', source: { kind: 'folder', path: path.join(studio.dataDir, 'incoming', 'shapes') } })
    datasetId = started.datasetId
    await expect.poll(async () => (await callFromPage(page, 'datasets.list'))[0]?.labelledCount, { timeout: 20_000 }).toBe(24)
  }
  await useQuickPlan(page, datasetId, 3)
  await page.reload()
  await page.keyboard.press('Alt+4')
  await expect(page.getByTestId('train-dataset-facts')).toContainText('3 classes')
  for (const [field, value] of [
    ['hp-batchSize', '2'],
    ['hp-epochs', String(epochs)]
  ]) {
    await setField(page, field, value)
  }
  await page.getByTestId('run-name').locator('input').fill(name)
  await page.getByTestId('start-run').click()
  const panel = page.getByTestId('run-panel')
  await expect(panel.getByRole('heading', { name })).toBeVisible()
  return { panel, runId: Number(await panel.getAttribute('data-run-id')) }
}

const stepOf = async (page: Page) => Number(await page.getByTestId('run-panel').getByTestId('run-step').getAttribute('data-value'))

test('pause and resume from the browser: the status says paused and progress stops, then goes on', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1000 })
  const { panel, runId } = await startRun(page, 'pause me', 6)
  const status = panel.getByTestId('run-status')
  await expect.poll(() => stepOf(page), { timeout: 60_000 }).toBeGreaterThan(1)

  await panel.getByTestId('run-pause').click()
  await expect(status).toHaveAttribute('data-status', 'paused')
  await expect(status).toHaveText('paused')
  await expect(panel.getByTestId('run-resume')).toBeVisible()
  await expect(panel).toContainText('paused')
  // The step in flight when Pause was pressed may still land; after that, nothing moves.
  await page.waitForTimeout(1000)
  const pausedAt = await stepOf(page)
  const overall = await panel.getByTestId('progress-overall').getAttribute('aria-valuenow')
  await page.waitForTimeout(2500)
  expect(await stepOf(page)).toBe(pausedAt)
  await expect(panel.getByTestId('progress-overall')).toHaveAttribute('aria-valuenow', overall ?? '')
  expect((await callFromPage(page, 'runs.get', { runId })).status).toBe('paused')
  await page.locator('.n-layout-content .n-scrollbar-container').first().evaluate((el) => el.scrollTo(0, 0))
  await shot(page, 'train-paused.png')

  await panel.getByTestId('run-resume').click()
  await expect(status).toHaveAttribute('data-status', 'running')
  await expect.poll(() => stepOf(page), { timeout: 30_000 }).toBeGreaterThan(pausedAt)
  expect((await callFromPage(page, 'runs.get', { runId })).status).toBe('running')

  // Done with it: stop, so the next test has the trainer to itself.
  await panel.getByTestId('run-stop').click()
  await page.getByRole('button', { name: 'Stop the run' }).click()
  await expect(panel.getByTestId('run-outcome')).toHaveAttribute('data-outcome', 'cancelled', { timeout: 60_000 })
  await expect.poll(() => trainerPids(studio), { timeout: 15_000 }).toEqual([])
})

test('a trainer process that dies: the run shows as failed with the reason, and still does after a reload', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1000 })
  const { panel, runId } = await startRun(page, 'doomed', 6)
  await expect.poll(() => stepOf(page), { timeout: 60_000 }).toBeGreaterThan(0)
  // The real child process, found through the OS: the studio's descendant with the trainer's marker.
  const pids = trainerPids(studio)
  expect(pids).toHaveLength(1)
  process.kill(pids[0], 'SIGKILL')

  const outcome = panel.getByTestId('run-outcome')
  await expect(outcome).toHaveAttribute('data-outcome', 'failed', { timeout: 30_000 })
  await expect(outcome).toContainText('The run failed')
  await expect(outcome).toContainText('the trainer process stopped unexpectedly (signal SIGKILL)')
  await expect(panel.getByTestId('run-status')).toHaveAttribute('data-status', 'failed')
  await expect(panel.getByTestId('run-pause')).toHaveCount(0)
  await page.locator('.n-layout-content .n-scrollbar-container').first().evaluate((el) => el.scrollTo(0, 0))
  await shot(page, 'train-failed.png')

  await page.reload()
  await expect(panel).toHaveAttribute('data-run-id', String(runId))
  await expect(outcome).toHaveAttribute('data-outcome', 'failed')
  await expect(outcome).toContainText('the trainer process stopped unexpectedly (signal SIGKILL)')
  expect(await callFromPage(page, 'runs.get', { runId })).toMatchObject({ status: 'failed', failureReason: 'the trainer process stopped unexpectedly (signal SIGKILL)' })
  // The studio goes on: the Start button is free again.
  await expect(page.getByTestId('start-run')).toBeEnabled()
})
