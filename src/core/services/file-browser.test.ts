import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { browseFolder } from './file-browser'

let dataDir: string
let outside: string

beforeAll(() => {
  dataDir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fts-browse-')))
  outside = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fts-outside-')))
  fs.mkdirSync(path.join(dataDir, 'cats'))
  fs.mkdirSync(path.join(dataDir, '.hidden'))
  fs.writeFileSync(path.join(dataDir, 'a.jpg'), '')
  fs.writeFileSync(path.join(dataDir, 'labels.csv'), 'a.jpg,cat\n')
  fs.symlinkSync(outside, path.join(dataDir, 'escape'))
})
afterAll(() => {
  fs.rmSync(dataDir, { recursive: true, force: true })
  fs.rmSync(outside, { recursive: true, force: true })
})

describe('the folder browser', () => {
  it('lists folders, images and CSV files inside the data directory', async () => {
    const listing = await browseFolder(dataDir, dataDir)
    expect(listing.path).toBe(dataDir)
    expect(listing.folders.map((f) => f.name)).toEqual(['cats'])
    expect(listing.imageCount).toBe(1)
    expect(listing.csvFiles.map((f) => f.name)).toEqual(['labels.csv'])
    expect(listing.roots.map((r) => r.label)).toContain('Studio data')
  })

  it('refuses folders outside home and the data directory, also through a symbolic link', async () => {
    if (outside.startsWith(fs.realpathSync(os.homedir()) + path.sep)) {
      console.log('skipped the outside-folder check: the temp folder lies inside the home folder here')
      return
    }
    await expect(browseFolder(outside, dataDir)).rejects.toThrow(/outside your home folder/)
    await expect(browseFolder(path.join(dataDir, 'escape'), dataDir)).rejects.toThrow(/outside your home folder/)
    await expect(browseFolder('/etc', dataDir)).rejects.toThrow(/outside/)
  })

  it('says when a folder does not exist', async () => {
    await expect(browseFolder(path.join(dataDir, 'nope'), dataDir)).rejects.toThrow(/no such folder/)
  })
})
