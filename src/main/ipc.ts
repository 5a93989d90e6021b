import { BrowserWindow, dialog, ipcMain, type WebContents, type WebFrameMain } from 'electron'
import { METHOD_NAMES, EVENT_CHANNEL, PICK_FOLDER_CHANNEL, methodChannel } from '../shared/channels'
import type { CallOutcome } from '../shared/errors'
import type { Studio } from '../core/services/studio'

/**
 * The only code that touches ipcMain: one handler per contract method, each refusing senders
 * that are not our own page (after VS Code's validatedIpcMain).
 */
export function registerContract(studio: Studio, isOwnPage: (frame: WebFrameMain | null) => boolean): () => void {
  for (const method of METHOD_NAMES) {
    ipcMain.handle(methodChannel(method), async (event, input: unknown): Promise<CallOutcome> => {
      if (!isOwnPage(event.senderFrame)) {
        return { ok: false, error: { code: 'unauthorized', message: `${method}: refused a call from a page that is not the studio` } }
      }
      return studio.call(method, input)
    })
  }
  ipcMain.handle(PICK_FOLDER_CHANNEL, async (event): Promise<string | null> => {
    if (!isOwnPage(event.senderFrame)) return null
    const window = BrowserWindow.fromWebContents(event.sender)
    const options = { title: 'Choose a folder of images', properties: ['openDirectory' as const] }
    const picked = window ? await dialog.showOpenDialog(window, options) : await dialog.showOpenDialog(options)
    return picked.canceled ? null : (picked.filePaths[0] ?? null)
  })
  return () => {
    METHOD_NAMES.forEach((method) => ipcMain.removeHandler(methodChannel(method)))
    ipcMain.removeHandler(PICK_FOLDER_CHANNEL)
  }
}

export function forwardEvents(studio: Studio, target: () => WebContents[]): () => void {
  return studio.onEvent((event) => {
    for (const contents of target()) if (!contents.isDestroyed()) contents.send(EVENT_CHANNEL, event)
  })
}
