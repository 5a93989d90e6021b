/**
 * The whole user flow, stage by stage, for both shells: web mode (flow.spec.ts) and the desktop
 * app (electron.spec.ts). Every stage works through the UI as a person does (clicks and keys);
 * the contract is called only to read state for assertions, through `FlowShell.call`, because
 * web mode reaches it over a WebSocket and the desktop app through the preload's bridge.
 *
 * The stages, in order: writeGarden → importGarden → labelWithNumberKeys → chooseLastBlockPlan →
 * trainOneEpoch → reloadAndFindEverything.
 */
import { expect, type Locator, type Page } from '@playwright/test'
import path from 'node:path'
import type { MethodInput, MethodName, MethodResult } from '../../src/shared/api'
import { writeDuplicate, writeImageFolder, writeTruncatedJpeg } from '../generators/images'
import { setField, shot as screenshot } from './ui-helpers'

export const CLASSES = ['disc', 'square', 'stripes']
/** The unlabelled photos are larger than a thumbnail (256 px): the Label view shows a bigger rendition. */
export const UNLABELLED_SIZE = 400

/** Calls a contract method from inside the page, the way this shell's page reaches the studio. */
export type CallStudio = <M extends MethodName>(page: Page, method: M, input?: MethodInput<M>) => Promise<MethodResult<M>>

/** The moments of the flow worth a picture. */
export type ShotMoment = 'label' | 'reloaded'

/** What differs between the two shells. */
export interface FlowShell {
  call: CallStudio
  /**
   * After "Import a folder…" is clicked on the empty Datasets view: whatever this shell needs
   * for the garden folder to be chosen (web mode: the folder browser; the desktop app: nothing,
   * its native dialog is replaced in the main process before the flow starts).
   */
  chooseGarden(page: Page): Promise<void>
  /** The file under docs/screenshots for a moment, or undefined for no picture. */
  screenshots: Partial<Record<ShotMoment, string>>
  /** Progress lines with the time since the start. */
  mark(what: string): void
}

/** A `mark` that prints the seconds since it was made. */
export function stopwatch(): (what: string) => void {
  const started = Date.now()
  return (what) => console.log(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`)
}

/**
 * The folder a user imports, at `garden`: one subfolder per class (4 images each), 6 unlabelled
 * images directly in the folder, a broken JPEG and an exact copy. 20 files.
 */
export async function writeGarden(garden: string): Promise<void> {
  const labelled = await writeImageFolder(garden, { classes: CLASSES, perClass: 4, size: 48, seed: 21 })
  await writeImageFolder(garden, { classes: CLASSES, perClass: 2, size: UNLABELLED_SIZE, layout: 'flat', seed: 22 })
  await writeTruncatedJpeg(path.join(garden, 'square', 'broken.jpg'), 48)
  await writeDuplicate(labelled[0].path, path.join(garden, 'stripes', 'copy.jpg'))
}

async function shot(page: Page, shell: FlowShell, moment: ShotMoment): Promise<void> {
  const name = shell.screenshots[moment]
  if (!name) return
  await screenshot(page, name, { fromTop: true })
}

/** A Naive UI radio button by its exact label. */
export function radio(scope: Locator | Page, label: string): Locator {
  const exact = new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`)
  return scope.locator('label.n-radio-button', { hasText: exact })
}

/** The import report as the Datasets view shows it: counts, the broken file and the duplicate. */
export async function expectGardenReport(page: Page): Promise<void> {
  const panel = page.getByTestId('import-panel')
  await expect(panel).toContainText('Imported garden', { timeout: 30_000 })
  const report = panel.getByTestId('import-report')
  await expect(report).toContainText('18 images imported')
  await expect(report).toContainText('1 duplicate')
  await expect(report).toContainText('1 rejected')
  await expect(report).toContainText('of 20 files')
  const rejected = panel.getByTestId('import-rejected')
  await expect(rejected).toContainText('square/broken.jpg')
  await expect(rejected).toContainText(/corrupt or truncated JPEG/)
  await panel.getByRole('button', { name: 'Duplicates (1)' }).click()
  const duplicates = panel.getByTestId('import-duplicates')
  await expect(duplicates).toContainText('stripes/copy.jpg')
  await expect(duplicates).toContainText('disc/0000.jpg')
}

/** Datasets: from the empty view, import the garden folder as a new dataset. Returns its id. */
export async function importGarden(page: Page, shell: FlowShell): Promise<number> {
  await expect(page.getByRole('heading', { name: 'No datasets yet' })).toBeVisible()
  await page.getByTestId('import-first').click()
  await shell.chooseGarden(page)
  await expectGardenReport(page)
  await expect(page.getByTestId('dataset-title')).toHaveText('garden')
  await expect(page.getByTestId('grid-count')).toHaveText('18 images')
  return (await shell.call(page, 'datasets.list'))[0].id
}

/** Label: unlabelled only, one number key per image, until all 18 are labelled. */
export async function labelWithNumberKeys(page: Page, shell: FlowShell, datasetId: number): Promise<void> {
  await page.keyboard.press('Alt+2')
  await expect(page.getByRole('heading', { name: 'Label', level: 1 })).toBeVisible()
  const count = page.getByTestId('labelled-count')
  await expect(count).toHaveText('12 of 18 labelled')
  const unlabelledOnly = page.getByTestId('unlabelled-only')
  if ((await unlabelledOnly.getAttribute('aria-checked')) !== 'true') await unlabelledOnly.click()
  await expect(unlabelledOnly).toHaveAttribute('aria-checked', 'true')
  await expect(page.getByTestId('position')).toHaveText('Image 1 of 6 unlabelled')
  // Which key gives which class: the class buttons say so.
  const keyOf = new Map<string, string>()
  for (let n = 1; n <= CLASSES.length; n++) {
    const text = (await page.getByTestId(`class-button-${n}`).textContent()) ?? ''
    const name = CLASSES.find((c) => text.includes(c))
    expect(name, `class button ${n} names a class: ${text}`).toBeTruthy()
    keyOf.set(name as string, String(n))
  }
  // The big image is a larger rendition than the 256 px thumbnail: the photo's own 400 px.
  const image = page.getByTestId('label-image')
  await expect.poll(() => image.evaluate((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth)).toBe(UNLABELLED_SIZE)
  await shot(page, shell, 'label')
  for (let n = 13; n <= 18; n++) {
    // The flat files are named after what they show (disc-0000.jpg): press that class's key.
    const file = (await page.getByTestId('label-file').textContent()) ?? ''
    const name = CLASSES.find((c) => file.startsWith(`${c}-`))
    expect(name, `an unlabelled image is on screen, not ${file}`).toBeTruthy()
    await page.keyboard.press(keyOf.get(name as string) as string)
    await expect(count).toHaveText(`${n} of 18 labelled`)
  }
  await expect(page.getByTestId('all-labelled')).toBeVisible()
  for (const name of CLASSES) await expect(page.getByTestId(`class-button-${keyOf.get(name)}`)).toContainText(new RegExp(`${name}\\s*6$`))
  const stats = await shell.call(page, 'datasets.stats', { datasetId })
  expect(stats.classes.map((c) => [c.name, c.count])).toEqual(CLASSES.map((c) => [c, 6]))
}

/** Model: last block + head, weight normalization on what trains, 32 px, random start; use it. */
export async function chooseLastBlockPlan(page: Page): Promise<void> {
  await page.keyboard.press('Alt+3')
  await expect(page.getByRole('heading', { name: 'Model', level: 1 })).toBeVisible()
  await expect(page.getByTestId('head-classes')).toContainText('3 classes')
  await radio(page, 'Head only').click()
  await radio(page, 'Last block + classifier').click()
  await radio(page, 'On trained layers').click()
  await radio(page.locator('[data-field="inputSize"]'), '32').click()
  await page.getByText('No weights (random init)').click()
  for (const name of ['block5_conv1', 'block5_conv3', 'fc1', 'predictions']) await expect(page.getByTestId(`layer-${name}`)).toHaveAttribute('data-mode', 'train+wn')
  await expect(page.getByTestId('layer-block4_conv3')).toHaveAttribute('data-mode', 'frozen')
  await expect(page.getByTestId('layer-predictions')).toContainText('New layer for 3 classes: disc, square, stripes')
  await expect(page.getByTestId('use-plan')).toBeEnabled()
  await page.getByTestId('use-plan').click()
  await expect(page).toHaveURL(/#\/train$/)
}

/** What a finished run showed, for the reload to find again. */
export interface TrainedRun {
  runId: number
  steps: number
  valAccuracy: string
}

/** Train: one epoch in batches of 4, the live curves, the run completed. */
export async function trainOneEpoch(page: Page): Promise<TrainedRun> {
  await expect(page.getByRole('heading', { name: 'Train', level: 1 })).toBeVisible()
  await expect(page.getByTestId('train-dataset-facts')).toContainText('3 classes')
  await expect(page.getByTestId('train-plan-title')).toHaveText('VGG16 @ 32×32')
  await setField(page, 'hp-batchSize', '4')
  await setField(page, 'hp-epochs', '1')
  await page.getByTestId('run-name').locator('input').fill('garden, first try')
  await page.getByTestId('start-run').click()
  const panel = page.getByTestId('run-panel')
  await expect(panel.getByRole('heading', { name: 'garden, first try' })).toBeVisible()
  const runId = Number(await panel.getAttribute('data-run-id'))

  // Blocks 1-4 are frozen and random flips are the only augmentation: the trainer caches their
  // output for both orientations, and shares each batch among one model replica per core.
  await expect(panel.getByTestId('run-how')).toContainText('frozen layers up to block4_pool run once per image', { timeout: 60_000 })
  await expect(panel.getByTestId('run-how')).toContainText('both orientations')

  // The curves get points while it trains (uPlot's own data, as drawn).
  const loss = panel.getByRole('figure', { name: 'Loss' }).getByTestId('uplot')
  await expect.poll(async () => Number(await loss.getAttribute('data-points')), { timeout: 60_000 }).toBeGreaterThan(0)
  const step = panel.getByTestId('run-step')
  await expect(panel.getByTestId('run-outcome')).toHaveAttribute('data-outcome', 'completed', { timeout: 60_000 })
  const steps = Number(await step.getAttribute('data-value'))
  expect(steps).toBeGreaterThanOrEqual(3) // ~14 training images in batches of 4
  // Every step's loss, then the epoch's training and validation loss.
  await expect.poll(async () => Number(await loss.getAttribute('data-points'))).toBe(steps + 2)
  await expect(panel.getByRole('figure', { name: 'Accuracy' }).getByTestId('uplot')).toHaveAttribute('data-points', String(steps + 2))
  await expect(panel.getByTestId('run-epoch')).toHaveText('1')
  const valAccuracy = (await panel.getByTestId('run-val-acc').textContent()) ?? ''
  expect(valAccuracy).toMatch(/%$/)
  return { runId, steps, valAccuracy }
}

/** Reload the page (on the Train view) and find the run, the plan, the labels and the import report as they were. */
export async function reloadAndFindEverything(page: Page, shell: FlowShell, datasetId: number, trained: TrainedRun): Promise<void> {
  const { runId, steps, valAccuracy } = trained
  await page.reload()
  const panel = page.getByTestId('run-panel')
  const loss = panel.getByRole('figure', { name: 'Loss' }).getByTestId('uplot')
  await expect(page.getByRole('heading', { name: 'Train', level: 1 })).toBeVisible()
  await expect(panel).toHaveAttribute('data-run-id', String(runId))
  await expect(panel.getByTestId('run-outcome')).toHaveAttribute('data-outcome', 'completed')
  await expect(panel.getByTestId('run-step')).toHaveAttribute('data-value', String(steps))
  await expect(panel.getByTestId('run-val-acc')).toHaveText(valAccuracy)
  await expect(loss).toHaveAttribute('data-points', String(steps + 2))
  await expect(page.getByTestId('train-plan-title')).toHaveText('VGG16 @ 32×32')
  const [run] = await shell.call(page, 'runs.list')
  expect(run).toMatchObject({ id: runId, status: 'completed', datasetId, epochs: 1, epochsCompleted: 1 })
  expect(run.latest?.valAccuracy).not.toBeNull()

  await page.keyboard.press('Alt+5')
  const row = page.locator('tr', { has: page.getByTestId(`run-row-${runId}`) })
  await expect(row).toContainText('garden, first try')
  await expect(row.getByTestId('run-status')).toHaveAttribute('data-status', 'completed')
  await expect(row).toContainText('1 / 1')

  await page.keyboard.press('Alt+3')
  await expect(radio(page, 'Last block + classifier')).toHaveClass(/n-radio-button--checked/)
  await expect(radio(page, 'On trained layers')).toHaveClass(/n-radio-button--checked/)
  await expect(radio(page.locator('[data-field="inputSize"]'), '32')).toHaveClass(/n-radio-button--checked/)
  await expect(page.getByTestId('layer-block5_conv2')).toHaveAttribute('data-mode', 'train+wn')
  await expect(page.getByTestId('random-init-note')).toBeVisible()

  await page.keyboard.press('Alt+2')
  await expect(page.getByTestId('labelled-count')).toHaveText('18 of 18 labelled')

  await page.keyboard.press('Alt+1')
  await expect(page.getByTestId('dataset-title')).toHaveText('garden')
  await expect(page.getByTestId('grid-count')).toHaveText('18 images')
  await expectGardenReport(page)
  await expect(page.getByTestId('import-finished')).toContainText('finished')
  await shot(page, shell, 'reloaded')
}

/** The whole flow on a page that shows the empty studio, with the garden folder written. */
export async function runWholeFlow(page: Page, shell: FlowShell): Promise<void> {
  const datasetId = await importGarden(page, shell)
  shell.mark('imported')
  await labelWithNumberKeys(page, shell, datasetId)
  shell.mark('labelled with the number keys')
  await chooseLastBlockPlan(page)
  shell.mark('plan chosen')
  const trained = await trainOneEpoch(page)
  shell.mark(`trained: ${trained.steps} steps, validation accuracy ${trained.valAccuracy}`)
  await reloadAndFindEverything(page, shell, datasetId, trained)
  shell.mark('reloaded: dataset, labels, report, run and plan as they were')
}
