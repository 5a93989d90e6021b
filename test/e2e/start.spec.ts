import { test, expect } from '@playwright/test'
import path from 'node:path'
import { launch } from './studio-server'

const ROOT = path.resolve(__dirname, '../..')

test('npm start falls back to web mode, says why in one line, and serves the studio', async ({ page }) => {
  // No display: even where the Electron binary exists, the desktop shell cannot open a window.
  const env = { ...process.env, DISPLAY: '', WAYLAND_DISPLAY: '' }
  const studio = await launch([path.join(ROOT, 'scripts/start.cjs')], [], env)
  try {
    const notices = studio.output().split('\n').filter((line) => line.includes('desktop shell unavailable'))
    expect(notices).toHaveLength(1)
    expect(notices[0]).toMatch(/starting web mode instead\.$/)
    await page.goto(studio.openUrl)
    await expect(page.getByTestId('status-schema')).toHaveText(/^schema v\d+$/)
  } finally {
    await studio.stop()
  }
})
