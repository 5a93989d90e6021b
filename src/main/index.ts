import { app, BrowserWindow, dialog } from 'electron'
import { Studio } from '../core/services/studio'
import { resolveDataDir } from '../core/store/data-dir'
import { registerContract, forwardEvents } from './ipc'
import { createMainWindow, isOwnPage } from './window'

function dataDirFlag(argv: string[]): string | undefined {
  const index = argv.indexOf('--data-dir')
  if (index >= 0) return argv[index + 1]
  return argv.find((a) => a.startsWith('--data-dir='))?.slice('--data-dir='.length)
}

async function start(): Promise<void> {
  await app.whenReady()
  let studio: Studio
  try {
    studio = await Studio.open({ dataDir: resolveDataDir({ flag: dataDirFlag(process.argv) }), transport: 'electron' })
  } catch (error) {
    dialog.showErrorBox('Finetune Studio cannot start', error instanceof Error ? error.message : String(error))
    app.exit(1)
    return
  }
  registerContract(studio, isOwnPage)
  forwardEvents(studio, () => BrowserWindow.getAllWindows().map((w) => w.webContents))
  createMainWindow()
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createMainWindow()
  })
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit()
  })
  app.on('will-quit', () => void studio.close())
}

void start()
