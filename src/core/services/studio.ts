import { EventEmitter } from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import type { StudioEvent, StudioEvents, EventName } from '../../shared/api'
import type { SystemInfo } from '../../shared/dto'
import type { Rendition } from '../../shared/renditions'
import { Database } from '../store/db'
import { databasePath } from '../store/data-dir'
import { migrate } from '../store/migrations'
import { dispatch, type ServiceHandlers } from './dispatch'
import { systemInfo } from './system-service'
import type { CallOutcome } from '../../shared/errors'
import { datasetHandlers } from './dataset-handlers'
import { ImportRunner, thumbnailDirFor } from './import-handlers'
import { failInterruptedImports } from '../store/imports-repo'
import { failOrphanedRuns } from '../store/runs-repo'
import { assignPendingSplits } from '../store/splits-repo'
import { imageSource } from '../store/images-repo'
import { makeThumbnail, thumbnailPath } from '../data/thumbnails'
import { loadStoredImage } from '../data/stored-image'
import { browseFolder } from './file-browser'
import { planHandlers } from './plan-handlers'
import { TrainingService, type TrainerLauncher } from './training-service'
import { forkTrainer } from '../engine/trainer-process'
import { trainingHandlers } from './training-handlers'

export interface StudioOptions {
  dataDir: string
  transport: SystemInfo['transport']
  /** Seconds between heartbeat events; 0 turns them off. */
  heartbeatSeconds?: number
  /** How to start a trainer process (default: fork the trainer's TypeScript entry with tsx). */
  launchTrainer?: TrainerLauncher
}

/** The longest side of the Label view's large image, in pixels (thumbnails are 256). */
export const PREVIEW_SIZE = 1024

/** Web mode and the CLI run from sources: fork the trainer's TypeScript entry (TensorFlow.js loads only there). */
const forkDefaultTrainer: TrainerLauncher = () => forkTrainer()

/** The studio's backend, independent of any transport: open it, call it, subscribe to it, close it. */
export class Studio {
  private readonly events = new EventEmitter()
  private heartbeat: NodeJS.Timeout | null = null
  private readonly startedAt = Date.now()
  readonly handlers: ServiceHandlers
  readonly imports: ImportRunner
  readonly training: TrainingService
  readonly thumbnailDir: string
  readonly previewDir: string

  private constructor(
    readonly db: Database,
    readonly options: StudioOptions
  ) {
    const ctx = { db, dataDir: options.dataDir, transport: options.transport }
    this.thumbnailDir = thumbnailDirFor(options.dataDir)
    this.previewDir = path.join(options.dataDir, 'previews')
    const labelsChanged = (datasetId: number) => this.labelsChanged(datasetId)
    this.imports = new ImportRunner({ db, thumbnailDir: this.thumbnailDir, onProgress: (p) => this.emit('import.progress', p), onFinished: labelsChanged })
    this.training = new TrainingService({ db, dataDir: options.dataDir, launch: options.launchTrainer ?? forkDefaultTrainer, emit: (p) => this.emit('run.progress', p) })
    this.handlers = {
      'system.info': () => systemInfo(ctx),
      ...trainingHandlers(db, this.training),
      ...datasetHandlers({ db, labelsChanged }),
      ...this.imports.handlers(),
      'files.browse': ({ path }) => browseFolder(path, options.dataDir),
      ...planHandlers(),
      'datasets.configureSplits': async ({ datasetId, ratios, seed }) => {
        await assignPendingSplits(db, datasetId, { ratios, seed })
        this.emit('labels.changed', { datasetId })
        return this.handlers['datasets.stats']({ datasetId })
      }
    }
  }

  /** Labelled images get their split as soon as they have a class; listeners hear of it. */
  private async labelsChanged(datasetId: number): Promise<void> {
    await assignPendingSplits(this.db, datasetId)
    this.emit('labels.changed', { datasetId })
  }

  /** The thumbnail of an image, made on demand if the cache lost it; null for an unknown id. */
  async thumbnail(imageId: number): Promise<string | null> {
    return this.rendition(imageId, 'thumbnail')
  }

  /**
   * An image at one of the sizes the page shows it (a file in the cache, made on demand from the
   * original); null for an unknown id. A preview whose original is gone falls back to the thumbnail.
   */
  async rendition(imageId: number, rendition: Rendition): Promise<string | null> {
    const source = await imageSource(this.db, imageId)
    if (!source) return null
    const { dir, size } = rendition === 'preview' ? { dir: this.previewDir, size: PREVIEW_SIZE } : { dir: this.thumbnailDir, size: undefined }
    const cached = thumbnailPath(dir, source.contentHash)
    if (fs.existsSync(cached)) return cached
    const bytes = await loadStoredImage(source.path)
    const made = Buffer.isBuffer(bytes) ? await makeThumbnail(bytes, dir, source.contentHash, { size, quality: rendition === 'preview' ? 88 : undefined }) : null
    if (made?.ok) return made.path
    return rendition === 'preview' ? this.rendition(imageId, 'thumbnail') : null
  }

  static async open(options: StudioOptions): Promise<Studio> {
    fs.mkdirSync(options.dataDir, { recursive: true })
    const db = await Database.open(databasePath(options.dataDir))
    try {
      await migrate(db)
      await failInterruptedImports(db)
      await failOrphanedRuns(db, 'the studio stopped while this run was active')
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
    await this.imports.cancelAll()
    await this.training.stopAll()
    this.events.removeAllListeners()
    await this.db.close()
  }
}
