import type { MethodInput, MethodName, StudioEvent } from '../../../shared/api'
import type { CallOutcome } from '../../../shared/errors'
import type { ServerMessage } from '../../../shared/ws-protocol'

export type ConnectionState = 'connecting' | 'open' | 'closed'

interface Pending {
  resolve: (outcome: CallOutcome) => void
}

/**
 * The web mode's transport: one WebSocket to the host (authenticated by the cookie the host set),
 * calls matched to replies by id, reconnecting with backoff when the host goes away.
 */
export class WebSocketTransport {
  private socket: WebSocket | null = null
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private readonly queue: string[] = []
  private readonly eventListeners = new Set<(event: StudioEvent) => void>()
  private readonly stateListeners = new Set<(state: ConnectionState) => void>()
  private retryDelay = 500
  state: ConnectionState = 'connecting'

  constructor(private readonly url: string) {
    this.connect()
  }

  private connect(): void {
    this.setState('connecting')
    const socket = new WebSocket(this.url)
    this.socket = socket
    socket.onopen = () => {
      this.retryDelay = 500
      this.setState('open')
      for (const frame of this.queue.splice(0)) socket.send(frame)
    }
    socket.onmessage = (message) => this.receive(String(message.data))
    socket.onclose = () => {
      this.setState('closed')
      for (const [id, pending] of this.pending) {
        pending.resolve({ ok: false, error: { code: 'internal', message: 'Lost the connection to the studio; try again.' } })
        this.pending.delete(id)
      }
      setTimeout(() => this.connect(), this.retryDelay)
      this.retryDelay = Math.min(this.retryDelay * 2, 8000)
    }
  }

  private receive(raw: string): void {
    const message = JSON.parse(raw) as ServerMessage
    if (message.type === 'event') {
      const { type: _type, ...event } = message
      for (const listener of this.eventListeners) listener(event as StudioEvent)
    } else if (typeof message.id === 'number') {
      this.pending.get(message.id)?.resolve(message.outcome)
      this.pending.delete(message.id)
    }
  }

  private setState(state: ConnectionState): void {
    this.state = state
    for (const listener of this.stateListeners) listener(state)
  }

  call<M extends MethodName>(method: M, input?: MethodInput<M>): Promise<CallOutcome> {
    const id = this.nextId++
    const frame = JSON.stringify({ id, method, input })
    return new Promise((resolve) => {
      this.pending.set(id, { resolve })
      if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(frame)
      else this.queue.push(frame)
    })
  }

  onEvent(listener: (event: StudioEvent) => void): () => void {
    this.eventListeners.add(listener)
    return () => this.eventListeners.delete(listener)
  }

  onState(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener)
    return () => this.stateListeners.delete(listener)
  }
}
