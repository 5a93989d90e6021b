import sqlite3 from 'sqlite3'

export interface RunResult {
  lastID: number
  changes: number
}

type Params = unknown[] | Record<string, unknown>

/**
 * sqlite3 behind promises, opened once per process with WAL and foreign keys. Multi-row changes
 * go through `transaction`, which queues so that two transactions never interleave on the one
 * connection.
 */
export class Database {
  private queue: Promise<unknown> = Promise.resolve()

  private constructor(
    private readonly raw: sqlite3.Database,
    readonly path: string
  ) {}

  static async open(path: string): Promise<Database> {
    const raw = await new Promise<sqlite3.Database>((resolve, reject) => {
      const db = new sqlite3.Database(path, (error) => (error ? reject(openError(path, error)) : resolve(db)))
    })
    const db = new Database(raw, path)
    await db.exec('PRAGMA busy_timeout = 5000')
    const mode = await db.get<{ journal_mode: string }>('PRAGMA journal_mode = WAL')
    if (path !== ':memory:' && mode?.journal_mode !== 'wal') {
      throw new Error(`${path}: could not switch the database to WAL mode (got ${mode?.journal_mode})`)
    }
    await db.exec('PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL')
    return db
  }

  run(sql: string, params: Params = []): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      this.raw.run(sql, params, function (error) {
        if (error) reject(error)
        else resolve({ lastID: this.lastID, changes: this.changes })
      })
    })
  }

  get<T>(sql: string, params: Params = []): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      this.raw.get(sql, params, (error, row) => (error ? reject(error) : resolve(row as T | undefined)))
    })
  }

  all<T>(sql: string, params: Params = []): Promise<T[]> {
    return new Promise((resolve, reject) => {
      this.raw.all(sql, params, (error, rows) => (error ? reject(error) : resolve(rows as T[])))
    })
  }

  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.raw.exec(sql, (error) => (error ? reject(error) : resolve()))
    })
  }

  /** Runs `work` inside BEGIN IMMEDIATE ... COMMIT; any throw rolls everything back. */
  transaction<T>(work: (db: Database) => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      await this.exec('BEGIN IMMEDIATE')
      try {
        const result = await work(this)
        await this.exec('COMMIT')
        return result
      } catch (error) {
        await this.exec('ROLLBACK').catch(() => undefined)
        throw error
      }
    })
    this.queue = next.catch(() => undefined)
    return next
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => this.raw.close((error) => (error ? reject(error) : resolve())))
  }
}

function openError(path: string, error: Error): Error {
  return new Error(`Cannot open the database ${path}: ${error.message}`)
}
