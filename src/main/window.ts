import { BrowserWindow, shell, type WebFrameMain } from 'electron'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

/** The page we load: the dev server in development, the built renderer otherwise. */
export function rendererUrl(): string {
  return process.env.ELECTRON_RENDERER_URL ?? pathToFileURL(path.join(__dirname, '../renderer/index.html')).href
}

export function isOwnPage(frame: WebFrameMain | null): boolean {
  if (!frame) return false
  const own = new URL(rendererUrl())
  const url = new URL(frame.url)
  return url.protocol === own.protocol && url.host === own.host && url.pathname === own.pathname
}

export function createMainWindow(): BrowserWindow {
  const window = new BrowserWindow({
    width: 1360,
    height: 860,
    minWidth: 960,
    minHeight: 600,
    show: false,
    title: 'Finetune Studio',
    autoHideMenuBar: true,
    webPreferences: {
      preload: path.join(__dirname, '../preload/index.js'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false
    }
  })
  window.once('ready-to-show', () => window.show())
  // No popups and no navigation away from the studio; plain https links open in the user's browser.
  window.webContents.setWindowOpenHandler(({ url }) => {
    if (url.startsWith('https://')) void shell.openExternal(url)
    return { action: 'deny' }
  })
  window.webContents.on('will-navigate', (event, url) => {
    if (new URL(url).pathname !== new URL(rendererUrl()).pathname) event.preventDefault()
  })
  void window.loadURL(rendererUrl())
  return window
}
