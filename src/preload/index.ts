import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from 'electron'
import { EVENT_CHANNEL, METHOD_NAMES, PICK_FOLDER_CHANNEL, methodChannel } from '../shared/channels'
import type { StudioBridge } from '../shared/bridge'
import type { StudioEvent } from '../shared/api'

// One function per contract method; the page never sees ipcRenderer itself.
const api = Object.fromEntries(
  METHOD_NAMES.map((method) => [method, (input?: unknown) => ipcRenderer.invoke(methodChannel(method), input)])
) as StudioBridge['api']

const bridge: StudioBridge = {
  api,
  onEvent(listener) {
    const forward = (_event: IpcRendererEvent, message: StudioEvent) => listener(message)
    ipcRenderer.on(EVENT_CHANNEL, forward)
    return () => {
      ipcRenderer.off(EVENT_CHANNEL, forward)
    }
  },
  pickFolder: () => ipcRenderer.invoke(PICK_FOLDER_CHANNEL),
  // Runs here, in the preload's world: the page's File objects keep their disk path only for it.
  pathForFile: (file) => webUtils.getPathForFile(file)
}

contextBridge.exposeInMainWorld('studio', bridge)
