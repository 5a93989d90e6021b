import { EventEmitter } from 'node:events'
import fs from 'node:fs'
import type { StudioEvent, StudioEvents, EventName } from '../../shared/api'
import type { SystemInfo } from '../../shared/dto'
import { Database } from '../store/db'
import { databasePath } from '../store/data-dir'
import { migrate } from '../store/migrations'
import { dispatch, type ServiceHandlers } from './dispatch'
import { systemInfo } from './system-service'
import type { CallOutcome } from '../../shared/errors'

export interface StudioOptions {
  dataDir: string
  transport: SystemInfo['transport']
  /** Seconds between heartbeat events; 0 turns them off. */
  heartbeatSeconds?: number
}

/** The studio's backend, independent of any transport: open it, call it, subscribe to it, close it. */
export class Studio {
  private readonly events = new EventEmitter()
  private heartbeat: NodeJS.Timeout | null = null
  private readonly startedAt = Date.now()
  readonly handlers: ServiceHandlers

  private constructor(
    readonly db: Database,
    readonly options: StudioOptions
  ) {
    const ctx = { db, dataDir: options.dataDir, transport: options.transport }
    this.handlers = {
      'system.info': () => systemInfo(ctx)
    }
  }

  static async open(options: StudioOptions): Promise<Studio> {
    fs.mkdirSync(options.dataDir, { recursive: true })
    const db = await Database.open(databasePath(options.dataDir))
    try {
      await migrate(db)
    } catch (error) {
      await db.close()
      throw error
    }
    const studio = new Studio(db, options)
    studio.startHeartbeat(options.heartbeatSeconds ?? 5)
    return studio
  }

  call(method: unknown, input: unknown): Promise<CallOutcome> {
    return dispatch(this.handlers, method, input)
  }

  onEvent(listener: (event: StudioEvent) => void): () => void {
    this.events.on('event', listener)
    return () => this.events.off('event', listener)
  }

  emit<E extends EventName>(event: E, payload: StudioEvents[E]): void {
    this.events.emit('event', { event, payload } satisfies StudioEvent<E>)
  }

  private startHeartbeat(seconds: number): void {
    if (seconds <= 0) return
    this.heartbeat = setInterval(() => {
      this.emit('system.heartbeat', { time: new Date().toISOString(), uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000) })
    }, seconds * 1000)
    this.heartbeat.unref()
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat)
    this.events.removeAllListeners()
    await this.db.close()
  }
}
