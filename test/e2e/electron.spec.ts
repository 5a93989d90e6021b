import { test, expect, _electron as electron } from '@playwright/test'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const ROOT = path.resolve(__dirname, '../..')

/** The Electron binary, or why the desktop test cannot run on this machine. */
function electronBinary(): { path: string } | { missing: string } {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const binary = require('electron') as unknown
    if (typeof binary === 'string' && fs.existsSync(binary)) {
      if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) return { missing: 'no display (run under xvfb-run to test the desktop app)' }
      return { path: binary }
    }
    return { missing: 'the Electron binary is missing' }
  } catch {
    return { missing: 'the Electron binary is not installed (its download failed or was skipped)' }
  }
}

const binary = electronBinary()

test('the desktop app opens the studio, sandboxed, with the backend in the status bar', async () => {
  if ('missing' in binary) {
    console.log(`skipped the Electron test: ${binary.missing}`)
    test.skip(true, binary.missing)
    return
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-electron-'))
  const app = await electron.launch({ executablePath: binary.path, args: [ROOT, '--data-dir', dataDir] })
  try {
    const page = await app.firstWindow()
    await expect(page.getByTestId('status-schema')).toHaveText(/^schema v\d+$/)
    await expect(page.getByTestId('status-backend')).toContainText(/CPU|GPU/)
    // The page has no Node: the sandbox and context isolation hold.
    expect(await page.evaluate(() => typeof (globalThis as { require?: unknown }).require)).toBe('undefined')
    expect(await page.evaluate(() => typeof (window as { studio?: { api?: unknown } }).studio?.api)).toBe('object')
    await page.screenshot({ path: path.join(ROOT, 'docs/screenshots/electron.png') })
  } finally {
    await app.close()
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
})
