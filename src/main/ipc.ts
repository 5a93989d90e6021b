import { ipcMain, type WebContents, type WebFrameMain } from 'electron'
import { METHOD_NAMES, EVENT_CHANNEL, methodChannel } from '../shared/channels'
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
  return () => METHOD_NAMES.forEach((method) => ipcMain.removeHandler(methodChannel(method)))
}

export function forwardEvents(studio: Studio, target: () => WebContents[]): () => void {
  return studio.onEvent((event) => {
    for (const contents of target()) if (!contents.isDestroyed()) contents.send(EVENT_CHANNEL, event)
  })
}
