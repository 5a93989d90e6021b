/**
 * The one contract between the UI and the studio's services. Every transport (Electron IPC,
 * the web host's WebSocket, the CLI) validates calls with these schemas before any service
 * sees them. This module imports nothing of ours but other files of `shared`.
 */
import { z } from 'zod'
import type { SystemInfo } from './dto'
import { METHOD_NAMES, type MethodNameList } from './channels'

interface MethodSpec<I extends z.ZodType, R> {
  input: I
  /** Phantom: carries the result type only. */
  result?: R
}

function method<R>() {
  return <I extends z.ZodType>(input: I): MethodSpec<I, R> => ({ input })
}

const noInput = z.object({}).strict().default({})

export const methods = {
  'system.info': method<SystemInfo>()(noInput)
} satisfies { [M in MethodNameList]: MethodSpec<z.ZodType, unknown> }

export type MethodName = keyof typeof methods
export type MethodInput<M extends MethodName> = z.input<(typeof methods)[M]['input']>
export type ParsedInput<M extends MethodName> = z.output<(typeof methods)[M]['input']>
export type MethodResult<M extends MethodName> = NonNullable<(typeof methods)[M]['result']>

export const methodNames: readonly MethodName[] = METHOD_NAMES

export function isMethodName(name: unknown): name is MethodName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(methods, name)
}

/** Events the backend pushes to every subscribed UI. */
export interface StudioEvents {
  'system.heartbeat': { time: string; uptimeSeconds: number }
}

export type EventName = keyof StudioEvents
export interface StudioEvent<E extends EventName = EventName> {
  event: E
  payload: StudioEvents[E]
}

/** What every front end (preload bridge, WebSocket client) offers the renderer. */
export interface StudioClient {
  call<M extends MethodName>(method: M, input?: MethodInput<M>): Promise<MethodResult<M>>
  onEvent(listener: (event: StudioEvent) => void): () => void
}
