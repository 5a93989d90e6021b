import { app, BrowserWindow, dialog, net, protocol } from 'electron'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { forkTrainer } from '../core/engine/trainer-process'
import { projectRoot } from '../core/project-root'
import { Studio } from '../core/services/studio'
import { resolveDataDir } from '../core/store/data-dir'
import { registerContract, forwardEvents } from './ipc'
import { createMainWindow, isOwnPage } from './window'
import { THUMBNAIL_SCHEME } from '../shared/channels'
import { parseRendition } from '../shared/renditions'

function dataDirFlag(argv: string[]): string | undefined {
  const index = argv.indexOf('--data-dir')
  if (index >= 0) return argv[index + 1]
  return argv.find((a) => a.startsWith('--data-dir='))?.slice('--data-dir='.length)
}

// Thumbnails reach the page by image id through our own scheme, never by a path the page chose.
protocol.registerSchemesAsPrivileged([{ scheme: THUMBNAIL_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }])

function serveThumbnails(studio: Studio): void {
  protocol.handle(THUMBNAIL_SCHEME, async (request) => {
    const url = new URL(request.url)
    const size = parseRendition(url.searchParams.get('size'))
    if (!size.ok) return new Response(size.message, { status: 400 })
    const id = /^\/(\d{1,12})$/.exec(url.pathname)?.[1]
    const file = id ? await studio.rendition(Number(id), size.rendition) : null
    return file ? net.fetch(pathToFileURL(file).href) : new Response('Not found', { status: 404 })
  })
}

async function start(): Promise<void> {
  await app.whenReady()
  let studio: Studio
  try {
    studio = await Studio.open({
      dataDir: resolveDataDir({ flag: dataDirFlag(process.argv) }),
      transport: 'electron',
      // The trainer runs from its TypeScript entry (through tsx, as in web mode), by Electron's own
      // binary acting as Node: a bundle of it would share chunks with this main process.
      launchTrainer: () =>
        forkTrainer({ modulePath: path.join(projectRoot(), 'src/core/engine/trainer-process.ts'), env: { ELECTRON_RUN_AS_NODE: '1' } })
    })
  } catch (error) {
    dialog.showErrorBox('Finetune Studio cannot start', error instanceof Error ? error.message : String(error))
    app.exit(1)
    return
  }
  registerContract(studio, isOwnPage)
  serveThumbnails(studio)
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
