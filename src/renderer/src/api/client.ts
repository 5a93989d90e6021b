import type { MethodInput, MethodName, MethodResult, StudioClient, StudioEvent } from '../../../shared/api'
import { ApiError, type CallOutcome } from '../../../shared/errors'
import { WebSocketTransport, type ConnectionState } from './ws-client'
import { THUMBNAIL_SCHEME } from '../../../shared/channels'
import type { Rendition } from '../../../shared/renditions'

const PREVIEW: Rendition = 'preview'

export interface StudioConnection extends StudioClient {
  transport: 'electron' | 'web'
  /** Where the page loads an image's thumbnail from. */
  thumbnailUrl(imageId: number): string
  /** Where the page loads an image's large rendition (the Label view's picture) from. */
  previewUrl(imageId: number): string
  /** The desktop app's native folder dialog; absent in web mode (use files.browse). */
  pickFolder?: () => Promise<string | null>
  /** The desktop app: where a dropped file or folder is on disk (null if it cannot tell). Absent in web mode. */
  pathForFile?: (file: File) => string | null
  onState(listener: (state: ConnectionState) => void): () => void
}

function unwrap<R>(outcome: CallOutcome): R {
  if (outcome.ok) return outcome.result as R
  throw new ApiError(outcome.error)
}

function electronConnection(bridge: NonNullable<Window['studio']>): StudioConnection {
  return {
    transport: 'electron',
    thumbnailUrl: (imageId) => `${THUMBNAIL_SCHEME}://image/${imageId}`,
    previewUrl: (imageId) => `${THUMBNAIL_SCHEME}://image/${imageId}?size=${PREVIEW}`,
    pickFolder: () => bridge.pickFolder(),
    pathForFile: (file) => {
      try {
        return bridge.pathForFile(file) || null
      } catch {
        return null
      }
    },
    async call<M extends MethodName>(method: M, input?: MethodInput<M>) {
      const invoke = bridge.api[method] as (input?: MethodInput<M>) => Promise<CallOutcome>
      return unwrap<MethodResult<M>>(await invoke(input))
    },
    onEvent: (listener: (event: StudioEvent) => void) => bridge.onEvent(listener),
    onState(listener) {
      listener('open')
      return () => undefined
    }
  }
}

function webConnection(): StudioConnection {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
  const transport = new WebSocketTransport(`${scheme}//${location.host}/api`)
  return {
    transport: 'web',
    thumbnailUrl: (imageId) => `/thumbnails/${imageId}`,
    previewUrl: (imageId) => `/thumbnails/${imageId}?size=${PREVIEW}`,
    async call<M extends MethodName>(method: M, input?: MethodInput<M>) {
      return unwrap<MethodResult<M>>(await transport.call(method, input))
    },
    onEvent: (listener) => transport.onEvent(listener),
    onState(listener) {
      listener(transport.state)
      return transport.onState(listener)
    }
  }
}

let connection: StudioConnection | null = null

/** The one way views and stores reach the studio; they never know which transport carries it. */
export function studio(): StudioConnection {
  connection ??= window.studio ? electronConnection(window.studio) : webConnection()
  return connection
}
