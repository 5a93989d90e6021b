import { test, expect, type Page } from '@playwright/test'
import path from 'node:path'
import { startStudio, type RunningStudio } from './studio-server'
import { writeDuplicate, writeImageFolder, writeTruncatedJpeg } from '../generators/images'
import { shot } from './ui-helpers'

let studio: RunningStudio

test.beforeAll(async () => {
  studio = await startStudio()
  // Inside the data dir, so web mode's folder browser (roots: home and data dir) can reach it.
  const incoming = path.join(studio.dataDir, 'incoming')
  const pets = path.join(incoming, 'pets')
  const images = await writeImageFolder(pets, { classes: 3, perClass: 6, size: 48, seed: 1 })
  await writeTruncatedJpeg(path.join(pets, 'class-1', 'broken.jpg'), 48)
  await writeDuplicate(images[0].path, path.join(pets, 'class-2', 'copy.jpg'))
  await writeImageFolder(path.join(incoming, 'new-photos'), { classes: 2, perClass: 4, size: 48, layout: 'flat', seed: 7 })
})

test.afterAll(async () => {
  await studio?.stop()
})


/** How many thumbnails in the grid have really loaded (decoded, non-zero size). */
function loadedThumbnails(page: Page): Promise<number> {
  return page.getByTestId('image-grid').locator('img').evaluateAll((imgs) => imgs.filter((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0).length)
}

test('import through the folder browser, see the report and grid, label with hotkeys, undo, redo, reload', async ({ page }) => {
  test.setTimeout(90_000)
  await page.goto(studio.openUrl)

  // A new user is told what to do first.
  await expect(page.getByRole('heading', { name: 'No datasets yet' })).toBeVisible()
  await shot(page, 'datasets-empty.png')

  // Web mode: the folder browser, rooted at home and the studio's data folder.
  await page.getByTestId('import-first').click()
  const browser = page.getByRole('dialog')
  await expect(browser.getByText('Import images')).toBeVisible()
  await browser.getByRole('button', { name: 'Studio data' }).click()
  await browser.getByRole('button', { name: 'Open folder incoming' }).click()
  await expect(browser.getByTestId('browser-summary')).toHaveText('0 images directly in this folder · 2 subfolders')
  await browser.getByRole('button', { name: 'Open folder pets' }).click()
  await expect(browser.getByTestId('browser-summary')).toHaveText('0 images directly in this folder · 3 subfolders')
  await expect(browser.getByRole('textbox', { name: 'Name of the new dataset' })).toHaveValue('pets')
  await browser.getByRole('textbox', { name: 'Name of the new dataset' }).fill('Pets')
  await shot(page, 'datasets-browser.png')
  await browser.getByRole('button', { name: 'Import this folder' }).click()
  await expect(browser).toBeHidden()

  // Progress ends in the report: 18 imported, the duplicate and the broken file named.
  const panel = page.getByTestId('import-panel')
  await expect(panel).toContainText('Imported pets', { timeout: 30_000 })
  await expect(panel.getByTestId('import-report')).toContainText('18 images imported')
  await expect(panel.getByTestId('import-report')).toContainText('1 duplicate')
  await expect(panel.getByTestId('import-report')).toContainText('1 rejected')
  await expect(panel.getByTestId('import-report')).toContainText('of 20 files')
  const rejected = panel.getByTestId('import-rejected')
  await expect(rejected).toContainText('class-1/broken.jpg')
  await expect(rejected).toContainText(/corrupt or truncated JPEG/)
  await shot(page, 'datasets-report.png')
  await panel.getByRole('button', { name: 'Duplicates (1)' }).click()
  const duplicates = panel.getByTestId('import-duplicates')
  await expect(duplicates).toContainText('class-2/copy.jpg')
  await expect(duplicates).toContainText('class-0/0000.jpg')
  await expect(page.getByTestId('dataset-title')).toHaveText('Pets')

  // The grid: real thumbnails, loaded.
  await expect(page.getByTestId('grid-count')).toHaveText('18 images')
  await expect.poll(() => loadedThumbnails(page), { timeout: 15_000 }).toBe(18)
  await panel.getByRole('button', { name: 'Close the import report' }).click()
  await expect(panel).toBeHidden()
  await expect(page.getByTestId('import-report-open')).toBeVisible()
  await shot(page, 'datasets-grid.png')

  // Filters reach the backend: the duplicated image alone; one class.
  const filters = page.getByRole('toolbar', { name: 'Filter and sort the images' })
  await filters.getByText('With duplicates', { exact: true }).click()
  await expect(page.getByTestId('grid-count')).toHaveText('1 image')
  await filters.getByText('All', { exact: true }).click()
  await expect(page.getByTestId('grid-count')).toHaveText('18 images')

  await page.getByRole('button', { name: 'Classes & splits' }).click()
  await expect(page.getByTestId('class-chart')).toContainText('class-2')
  await shot(page, 'datasets-classes.png')
  await page.getByRole('button', { name: 'Images', exact: true }).click()

  // A flat folder of unlabelled images into the same dataset (the browser remembers where it was).
  await page.getByTestId('import-open').click()
  await browser.getByRole('button', { name: 'Up one folder' }).click()
  await browser.getByRole('button', { name: 'Open folder new-photos' }).click()
  await expect(browser.getByTestId('browser-summary')).toContainText('8 images directly in this folder')
  await expect(browser.getByRole('combobox', { name: 'Import into' }).or(browser.locator('.n-base-selection').first())).toContainText('Pets')
  await browser.getByRole('button', { name: 'Import this folder' }).click()
  await expect(panel).toContainText('Imported new-photos', { timeout: 30_000 })
  await expect(panel.getByTestId('import-report')).toContainText('8 images imported')
  await expect(page.getByTestId('grid-count')).toHaveText('26 images')

  // Label: unlabelled only is on, because 8 images have no class.
  await page.keyboard.press('Alt+2')
  await expect(page.getByRole('heading', { name: 'Label', level: 1 })).toBeVisible()
  const count = page.getByTestId('labelled-count')
  await expect(count).toHaveText('18 of 26 labelled')
  await expect(page.getByTestId('unlabelled-only')).toHaveAttribute('aria-checked', 'true')
  await expect(page.getByTestId('position')).toHaveText('Image 1 of 8 unlabelled')
  await expect(page.getByTestId('label-image')).toHaveJSProperty('complete', true)

  // Hotkeys stay quiet while typing in a field.
  await page.getByRole('button', { name: 'New class' }).click()
  await page.getByRole('dialog').getByRole('textbox').fill('bird 1')
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click()
  await expect(count).toHaveText('18 of 26 labelled')

  // Bulk: click the first, shift-click the second, one key labels both.
  const grid = page.getByTestId('image-grid')
  await grid.locator('[data-index="0"]').click()
  await grid.locator('[data-index="1"]').click({ modifiers: ['Shift'] })
  await expect(page.getByText('2 selected ·')).toBeVisible()
  await shot(page, 'label-selection.png')
  await page.keyboard.press('2')
  await expect(count).toHaveText('20 of 26 labelled')

  // One at a time: each key labels the current image and the next unlabelled one takes its place.
  for (let n = 21; n <= 26; n++) {
    await page.keyboard.press('1')
    await expect(count).toHaveText(`${n} of 26 labelled`)
  }
  await expect(page.getByTestId('all-labelled')).toBeVisible()

  await page.keyboard.press('Control+z')
  await expect(count).toHaveText('25 of 26 labelled')
  await expect(page.getByTestId('position')).toHaveText('Image 1 of 1 unlabelled')
  await page.keyboard.press('Control+Shift+z')
  await expect(count).toHaveText('26 of 26 labelled')

  // After a reload the labels are still there: 6 + 6 by key, 6 + 2 in bulk, 6.
  await page.reload()
  await expect(count).toHaveText('26 of 26 labelled')
  await expect(page.getByTestId('unlabelled-only')).toHaveAttribute('aria-checked', 'false')
  await expect(page.getByTestId('class-button-1')).toContainText('12')
  await expect(page.getByTestId('class-button-2')).toContainText('8')
  await expect(page.getByTestId('class-button-3')).toContainText('6')
  await expect.poll(() => loadedThumbnails(page), { timeout: 15_000 }).toBe(26)
  await shot(page, 'label-all.png')

  await page.emulateMedia({ colorScheme: 'dark' })
  await page.waitForTimeout(600) // the theme's colour transition
  await shot(page, 'label-dark.png')
  // The Datasets view after the reload: the last import's report is back, read from the backend;
  // once closed it stays closed, and "Last import" opens it again.
  await page.keyboard.press('Alt+1')
  await expect(panel).toContainText('Imported new-photos')
  await expect(panel.getByTestId('import-report')).toContainText('8 images imported')
  await panel.getByRole('button', { name: 'Close the import report' }).click()
  await page.reload()
  await expect.poll(() => loadedThumbnails(page), { timeout: 15_000 }).toBe(26)
  await expect(panel).toBeHidden()
  await page.getByTestId('import-report-open').click()
  await expect(panel).toContainText('Imported new-photos')
  await panel.getByRole('button', { name: 'Close the import report' }).click()
  await shot(page, 'datasets-grid-dark.png')
})
