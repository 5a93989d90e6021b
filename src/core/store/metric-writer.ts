import type { Database } from './db'
import { insertMetrics, type MetricPoint } from './runs-repo'

/**
 * Buffers a run's metric points and writes them in batches (by count or after a short delay),
 * each batch in its own transaction. `close` flushes what is left: a finished step's metrics are
 * never lost, and the (run, name, step) key keeps a retried batch from duplicating them.
 */
export class MetricWriter {
  private buffer: MetricPoint[] = []
  private timer: NodeJS.Timeout | null = null
  private writing: Promise<void> = Promise.resolve()

  constructor(
    private readonly db: Database,
    private readonly runId: number,
    private readonly options: { maxPoints?: number; maxDelayMs?: number } = {}
  ) {}

  add(points: MetricPoint[]): void {
    this.buffer.push(...points)
    if (this.buffer.length >= (this.options.maxPoints ?? 500)) void this.flush()
    else this.timer ??= setTimeout(() => void this.flush(), this.options.maxDelayMs ?? 1000)
  }

  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const batch = this.buffer
    this.buffer = []
    if (batch.length) this.writing = this.writing.then(() => this.db.transaction((tx) => insertMetrics(tx, this.runId, batch)).then(() => undefined))
    return this.writing
  }

  close(): Promise<void> {
    return this.flush()
  }
}
