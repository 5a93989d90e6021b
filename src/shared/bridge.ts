import type { MethodInput, MethodName, MethodResult, StudioEvent } from './api'
import type { CallOutcome } from './errors'

/** What the Electron preload exposes as `window.studio`: one function per contract method. */
export interface StudioBridge {
  api: { [M in MethodName]: (input?: MethodInput<M>) => Promise<CallOutcome<MethodResult<M>>> }
  onEvent(listener: (event: StudioEvent) => void): () => void
  /** The native folder dialog; null when the user cancelled. */
  pickFolder(): Promise<string | null>
  /**
   * Where a dropped file or folder is on disk (Electron's `webUtils.getPathForFile`; `File.path`
   * is gone since Electron 32). '' for a File that did not come from the disk.
   */
  pathForFile(file: File): string
}
