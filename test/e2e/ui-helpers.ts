/** Small steps every view's spec takes: a screenshot for docs/screenshots, a field typed and left. */
import type { Page } from '@playwright/test'
import path from 'node:path'

export const SCREENSHOTS = path.resolve(__dirname, '../../docs/screenshots')

/**
 * Saves docs/screenshots/`name` once transitions (tabs, modals, tooltips) have settled. With
 * `fromTop`, the view's scroll area (it scrolls inside the layout) starts at its top.
 */
export async function shot(page: Page, name: string, options: { fromTop?: boolean } = {}): Promise<void> {
  if (options.fromTop) await page.locator('.n-layout-content .n-scrollbar-container').first().evaluate((el) => el.scrollTo(0, 0))
  await page.waitForTimeout(350)
  await page.screenshot({ path: path.join(SCREENSHOTS, name) })
}

/** Types `value` into the field with this test id and leaves it (Tab), which commits it. */
export async function setField(page: Page, testId: string, value: string): Promise<void> {
  const field = page.getByTestId(testId)
  await field.fill(value)
  await field.press('Tab')
}
