import { test, expect } from '@playwright/test'
import { startStudio, type RunningStudio } from './studio-server'
import { shot } from './ui-helpers'

let studio: RunningStudio

test.beforeAll(async () => {
  studio = await startStudio()
})

test.afterAll(async () => {
  await studio?.stop()
})

test('web mode shows the studio with the backend and schema in the status bar', async ({ page }) => {
  await page.goto(studio.openUrl)
  // The token is traded for a cookie and leaves the address bar.
  await expect(page).toHaveURL(/\/#\/datasets$/)
  expect(page.url()).not.toContain('token=')

  await expect(page.getByRole('heading', { name: 'Datasets', level: 1 })).toBeVisible()
  await expect(page.getByTestId('status-connection')).toHaveText(/Connected/)
  await expect(page.getByTestId('status-backend')).toContainText(/CPU · wasm|GPU · CUDA|CPU · TensorFlow|CPU · JS/)
  await expect(page.getByTestId('status-schema')).toHaveText(/^schema v\d+$/)
  await shot(page, 'shell-datasets.png')

  await page.getByTestId('status-backend').click()
  await expect(page.getByRole('cell', { name: /^tensorflow-gpu\s*@tensorflow\/tfjs-node-gpu$/ })).toBeVisible()
  await page.waitForTimeout(400) // let the popover finish fading in before the picture
  await shot(page, 'shell-backends.png')
  await page.keyboard.press('Escape')
})

test('every view is reachable from the navigation and by Alt+number', async ({ page }) => {
  await page.goto(studio.openUrl)
  for (const [index, title] of ['Datasets', 'Label', 'Model', 'Train', 'Runs'].entries()) {
    await page.keyboard.press(`Alt+${index + 1}`)
    await expect(page.getByRole('heading', { name: title, level: 1 })).toBeVisible()
  }
  await page.getByRole('menuitem', { name: /Model/ }).click()
  await expect(page).toHaveURL(/#\/model$/)
  await shot(page, 'shell-model.png')
})

test('the page is refused without the token', async ({ browser }) => {
  const context = await browser.newContext()
  const page = await context.newPage()
  const response = await page.goto(studio.origin + '/')
  expect(response?.status()).toBe(401)
  await expect(page.locator('body')).toContainText('access token')
  await context.close()
})
