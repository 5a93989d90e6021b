/**
 * The whole user flow in web mode, through the UI as a person does it (clicks and keys; the
 * contract is called only to read state for assertions): a folder on disk → import with the folder
 * browser → the report → label the unlabelled images with number keys → the layer plan → one epoch
 * of training with live curves → a reload finds everything as it was. The stages live in
 * flow-steps.ts; electron.spec.ts runs the same ones in the desktop app.
 */
import { test, expect, type Page } from '@playwright/test'
import path from 'node:path'
import { callFromPage } from './page-api'
import { startStudio, type RunningStudio } from './studio-server'
import { runWholeFlow, stopwatch, writeGarden, type FlowShell } from './flow-steps'

let studio: RunningStudio
const mark = stopwatch()

test.beforeAll(async () => {
  studio = await startStudio()
  // Inside the data dir, where web mode's folder browser may look.
  await writeGarden(path.join(studio.dataDir, 'incoming', 'garden'))
  mark('studio up, 20 files written')
})

test.afterAll(async () => {
  await studio?.stop()
})

/** Web mode has no native dialog: "Import a folder…" opens the folder browser, which walks to the garden. */
async function chooseGardenInFolderBrowser(page: Page): Promise<void> {
  const browser = page.getByRole('dialog')
  await browser.getByRole('button', { name: 'Studio data' }).click()
  await browser.getByRole('button', { name: 'Open folder incoming' }).click()
  await browser.getByRole('button', { name: 'Open folder garden' }).click()
  await expect(browser.getByTestId('browser-summary')).toHaveText('6 images directly in this folder · 3 subfolders')
  await expect(browser.getByRole('textbox', { name: 'Name of the new dataset' })).toHaveValue('garden')
  await browser.getByRole('button', { name: 'Import this folder' }).click()
  await expect(browser).toBeHidden()
}

const web: FlowShell = {
  call: callFromPage,
  chooseGarden: chooseGardenInFolderBrowser,
  screenshots: { label: 'label.png', reloaded: 'datasets-report-reloaded.png' },
  mark
}

test('import a folder, see the report, label with keys, pick layers, train one epoch, reload and find it all', async ({ page }) => {
  test.setTimeout(150_000)
  await page.setViewportSize({ width: 1440, height: 1000 })
  await page.goto(studio.openUrl)
  await runWholeFlow(page, web)
})
