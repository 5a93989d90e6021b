/** The web mode's WebSocket frames, shared by the host and the renderer's client. */
import { z } from 'zod'
import type { StudioEvent } from './api'
import type { ApiErrorShape, CallOutcome } from './errors'

/** The WebSocket's frames. A call names its contract method; its input is checked by the studio. */
const clientMessage = z.object({
  id: z.union([z.number().int(), z.string().max(64)]),
  method: z.string().max(128),
  input: z.unknown().optional()
})

export type ClientMessage = z.infer<typeof clientMessage>

export type ServerMessage =
  | { type: 'result'; id: ClientMessage['id'] | null; outcome: CallOutcome }
  | ({ type: 'event' } & StudioEvent)

export function parseClientMessage(
  raw: string | null
): { ok: true; message: ClientMessage } | { ok: false; id: ClientMessage['id'] | null; error: ApiErrorShape } {
  if (raw === null) return { ok: false, id: null, error: { code: 'invalid_input', message: 'Malformed message: binary frames are not accepted' } }
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch {
    return { ok: false, id: null, error: { code: 'invalid_input', message: 'Malformed message: not JSON' } }
  }
  const parsed = clientMessage.safeParse(json)
  if (!parsed.success) {
    const id = typeof json === 'object' && json && 'id' in json ? ((json as { id: unknown }).id as ClientMessage['id']) : null
    const fields = parsed.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ')
    return { ok: false, id: typeof id === 'number' || typeof id === 'string' ? id : null, error: { code: 'invalid_input', message: `Malformed message: ${fields}` } }
  }
  return { ok: true, message: parsed.data }
}
