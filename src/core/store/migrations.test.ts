import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Database } from './db'
import { migrate, schemaVersion, SchemaTooNewError, LATEST_SCHEMA_VERSION, type Migration } from './migrations'

let dir: string
let file: string

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-db-'))
  file = path.join(dir, 'studio.sqlite')
})
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }))

const TWO: Migration[] = [
  { version: 1, name: 'a', sql: 'CREATE TABLE a (id INTEGER PRIMARY KEY)' },
  { version: 2, name: 'b', sql: 'CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER NOT NULL REFERENCES a(id))' }
]

describe('the database', () => {
  it('opens a real file in WAL mode with foreign keys on', async () => {
    const db = await Database.open(file)
    expect((await db.get<{ journal_mode: string }>('PRAGMA journal_mode'))?.journal_mode).toBe('wal')
    expect((await db.get<{ foreign_keys: number }>('PRAGMA foreign_keys'))?.foreign_keys).toBe(1)
    await migrate(db, TWO)
    await expect(db.run('INSERT INTO b (a_id) VALUES (99)')).rejects.toThrow(/FOREIGN KEY/)
    await db.close()
  })

  it('rolls a failed transaction back completely', async () => {
    const db = await Database.open(file)
    await migrate(db, TWO)
    await expect(
      db.transaction(async (tx) => {
        await tx.run('INSERT INTO a (id) VALUES (1)')
        await tx.run('INSERT INTO a (id) VALUES (1)')
      })
    ).rejects.toThrow(/UNIQUE/)
    expect(await db.all('SELECT * FROM a')).toEqual([])
    await db.close()
  })
})

describe('migrations', () => {
  it('applies pending migrations in order, records them, and is idempotent', async () => {
    const db = await Database.open(file)
    expect(await migrate(db, TWO.slice(0, 1))).toEqual([1])
    expect(await migrate(db, TWO)).toEqual([2])
    expect(await migrate(db, TWO)).toEqual([])
    expect(await schemaVersion(db)).toBe(2)
    expect(await db.all('SELECT version, name FROM schema_migrations ORDER BY version')).toEqual([
      { version: 1, name: 'a' },
      { version: 2, name: 'b' }
    ])
    await db.close()
  })

  it('applies each migration atomically: a broken one leaves the previous version intact', async () => {
    const db = await Database.open(file)
    const broken: Migration[] = [...TWO, { version: 3, name: 'broken', sql: 'CREATE TABLE c (id INTEGER); CREATE TABLE c (id INTEGER)' }]
    await expect(migrate(db, broken)).rejects.toThrow(/already exists/)
    expect(await schemaVersion(db)).toBe(2)
    expect(await db.get("SELECT name FROM sqlite_master WHERE name = 'c'")).toBeUndefined()
    await db.close()
  })

  it('refuses a database from a newer studio and leaves it untouched', async () => {
    const newer = await Database.open(file)
    await migrate(newer, TWO)
    await newer.run('INSERT INTO a (id) VALUES (7)')
    await newer.close()
    const before = fs.readFileSync(file)

    const older = await Database.open(file)
    const error = await migrate(older, TWO.slice(0, 1)).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SchemaTooNewError)
    expect((error as Error).message).toMatch(/schema version 2.*knows only up to 1/)
    expect((error as Error).message).toContain(file)
    expect(await schemaVersion(older)).toBe(2)
    expect(await older.all('SELECT id FROM a')).toEqual([{ id: 7 }])
    await older.close()
    expect(fs.readFileSync(file).equals(before)).toBe(true)
  })

  it('brings a new database to the latest schema the studio knows', async () => {
    const db = await Database.open(file)
    await migrate(db)
    expect(await schemaVersion(db)).toBe(LATEST_SCHEMA_VERSION)
    await db.close()
  })
})
