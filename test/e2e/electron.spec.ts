/**
 * The desktop app, end to end: it opens sandboxed (no Node in the page, the preload's bridge
 * present), then the same user flow as web mode's flow.spec.ts (flow-steps.ts): import a folder
 * → the report → label with number keys → the layer plan → one epoch of training → a reload
 * finds everything. The one difference is how the folder is chosen: "Import a folder…" asks the
 * main process for the native folder dialog (PICK_FOLDER_CHANNEL → dialog.showOpenDialog in
 * src/main/ipc.ts), which the test replaces in the main process to answer with the generated
 * folder. Runs only where the Electron binary and a display exist; prints why it is skipped
 * elsewhere.
 */
import { test, expect, _electron as electron, type ElectronApplication } from '@playwright/test'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { callThroughBridge } from './page-api'
import { runWholeFlow, stopwatch, writeGarden, type FlowShell } from './flow-steps'

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

/** What the replaced dialog was asked for, kept in the main process: each call's `properties`. */
interface DialogLog {
  folderDialogCalls?: string[][]
}

/**
 * Replaces the native folder dialog in the main process: every `dialog.showOpenDialog` (with or
 * without a parent window) answers `folder` at once and logs the properties it was asked with.
 * Fails if the replacement did not take (a real dialog would wait for a person).
 */
async function answerFolderDialogWith(app: ElectronApplication, folder: string): Promise<void> {
  const replaced = await app.evaluate(({ dialog }, folder) => {
    const calls: string[][] = []
    ;(globalThis as DialogLog).folderDialogCalls = calls
    const answer = async (...args: unknown[]) => {
      const options = args[args.length - 1] as { properties?: string[] } | undefined
      calls.push([...(options?.properties ?? [])])
      return { canceled: false, filePaths: [folder] }
    }
    dialog.showOpenDialog = answer as typeof dialog.showOpenDialog
    return dialog.showOpenDialog === answer
  }, folder)
  expect(replaced, 'dialog.showOpenDialog is replaced in the main process').toBe(true)
}

test('the desktop app opens sandboxed, imports a folder from its native dialog, labels, plans, trains one epoch and finds it all after a reload', async () => {
  if ('missing' in binary) {
    console.log(`skipped the Electron test: ${binary.missing}`)
    test.skip(true, binary.missing)
    return
  }
  test.setTimeout(240_000)
  const mark = stopwatch()
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-electron-'))
  const dataDir = path.join(scratch, 'data')
  const garden = path.join(scratch, 'incoming', 'garden')
  fs.mkdirSync(dataDir)
  await writeGarden(garden)
  mark('20 files written')
  // --data-dir is the studio's own flag (src/main/index.ts); --user-data-dir is Chromium's, which
  // Electron honours for app.getPath('userData'): the page's localStorage (the Model view's plan)
  // starts empty instead of coming from an earlier run or the user's own app.
  const app = await electron.launch({ executablePath: binary.path, args: [ROOT, '--data-dir', dataDir, `--user-data-dir=${path.join(scratch, 'profile')}`] })
  try {
    await answerFolderDialogWith(app, garden)
    const page = await app.firstWindow()
    await expect(page.getByTestId('status-schema')).toHaveText(/^schema v\d+$/, { timeout: 30_000 })
    await expect(page.getByTestId('status-backend')).toContainText(/CPU|GPU/)
    // The page has no Node: the sandbox and context isolation hold.
    expect(await page.evaluate(() => typeof (globalThis as { require?: unknown }).require)).toBe('undefined')
    expect(await page.evaluate(() => typeof (window as { studio?: { api?: unknown } }).studio?.api)).toBe('object')
    mark('the desktop app is up, sandboxed')

    const desktop: FlowShell = {
      call: callThroughBridge,
      // "Import a folder…" asked the main process for the native dialog, once, for a folder; the
      // replaced dialog answered with the garden.
      chooseGarden: async () => {
        await expect.poll(() => app.evaluate(() => (globalThis as DialogLog).folderDialogCalls)).toEqual([['openDirectory']])
      },
      screenshots: { reloaded: 'electron.png' },
      mark
    }
    await runWholeFlow(page, desktop)
  } finally {
    await app.close()
    fs.rmSync(scratch, { recursive: true, force: true })
  }
})
