import type { Database } from './db'
import { DATASETS_AND_RUNS } from './schema/002-datasets-runs'

export interface Migration {
  version: number
  name: string
  sql: string
}

/** Append only: a released migration is never edited, a change is a new version. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'settings',
    sql: `
      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
      );
    `
  },
  { version: 2, name: 'datasets and runs', sql: DATASETS_AND_RUNS }
]

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version

export class SchemaTooNewError extends Error {
  constructor(
    readonly path: string,
    readonly found: number,
    readonly known: number
  ) {
    super(
      `${path} has schema version ${found}, but this version of Finetune Studio knows only up to ${known}. ` +
        'It was written by a newer Finetune Studio: upgrade the studio, or choose another data directory. ' +
        'The database was not changed.'
    )
    this.name = 'SchemaTooNewError'
  }
}

export async function schemaVersion(db: Database): Promise<number> {
  const row = await db.get<{ user_version: number }>('PRAGMA user_version')
  return row?.user_version ?? 0
}

/**
 * Brings the database up to LATEST_SCHEMA_VERSION, each migration in its own transaction, and
 * refuses (before writing anything) a database from a newer studio.
 */
export async function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const latest = migrations.length ? migrations[migrations.length - 1].version : 0
  const current = await schemaVersion(db)
  if (current > latest) throw new SchemaTooNewError(db.path, current, latest)

  await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
  )`)
  const applied: number[] = []
  for (const migration of migrations) {
    if (migration.version <= current) continue
    await db.transaction(async (tx) => {
      await tx.exec(migration.sql)
      await tx.run('INSERT INTO schema_migrations (version, name) VALUES (?, ?)', [migration.version, migration.name])
      await tx.exec(`PRAGMA user_version = ${Number(migration.version)}`)
    })
    applied.push(migration.version)
  }
  return applied
}
