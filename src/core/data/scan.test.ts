import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeGrayscalePng, writeImageFolder } from '../../../test/generators/images'
import { parseLabelCsv, scanFolder, ScanError, type ScanResult } from './scan'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fs-scan-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const reasonFor = (result: ScanResult, path: string): string | undefined => result.skipped.find((s) => s.path === path)?.reason

describe('scanFolder: class folders', () => {
  let root: string
  let result: ScanResult

  beforeAll(async () => {
    root = join(dir, 'classes')
    await writeImageFolder(root, { classes: ['cat', 'dog'], perClass: 3, size: 16, format: 'png' })
    await mkdir(join(root, 'cat', 'indoor', 'sofa'), { recursive: true })
    await writeGrayscalePng(join(root, 'cat', 'indoor', 'sofa', 'deep.PNG'))
    await writeGrayscalePng(join(root, 'loose.png'))
    await writeFile(join(root, '.DS_Store'), 'x')
    await mkdir(join(root, '.thumbnails'))
    await writeGrayscalePng(join(root, '.thumbnails', 'hidden.png'))
    await writeFile(join(root, 'notes.txt'), 'x')
    await writeFile(join(root, 'dog', 'IMG_0001.HEIC'), 'x')
    await writeFile(join(root, 'dog', 'README'), 'x')
    await mkdir(join(root, '__MACOSX', 'cat'), { recursive: true })
    await writeFile(join(root, '__MACOSX', 'cat', '._0000.png'), 'x')
    await mkdir(join(root, 'empty-class'))
    // A link back to the root and a link to a sibling: the walk must end and not count twice.
    await symlink(root, join(root, 'cat', 'loop'))
    await symlink(join(root, 'dog'), join(root, 'cat', 'dog-again'))
    await symlink(join(root, 'nowhere.png'), join(root, 'dog', 'broken.png'))
    try {
      execFileSync('mkfifo', [join(root, 'dog', 'pipe.jpg')])
    } catch {
      // No mkfifo: the FIFO case is just not exercised.
    }
    result = await scanFolder(root)
  })

  it('labels each image with its top-level folder, however deep it lies', () => {
    expect(result.layout).toBe('class-folders')
    expect(result.root).toBe(root)
    expect(result.classes).toEqual(['cat', 'dog'])
    const labelled = result.files.filter((f) => f.label !== null).map((f) => [f.path.slice(root.length + 1), f.label])
    expect(labelled).toEqual([
      ['cat/0000.png', 'cat'],
      ['cat/0001.png', 'cat'],
      ['cat/0002.png', 'cat'],
      ['cat/indoor/sofa/deep.PNG', 'cat'],
      ['dog/0000.png', 'dog'],
      ['dog/0001.png', 'dog'],
      ['dog/0002.png', 'dog']
    ])
  })

  it('imports images directly in the root unlabelled', () => {
    expect(result.files.filter((f) => f.label === null).map((f) => f.path)).toEqual([join(root, 'loose.png')])
  })

  it('skips hidden entries, non-images and archive metadata, and says why', () => {
    expect(reasonFor(result, join(root, '.DS_Store'))).toBe('hidden')
    expect(reasonFor(result, join(root, '.thumbnails'))).toBe('hidden')
    expect(reasonFor(result, join(root, '.thumbnails', 'hidden.png'))).toBeUndefined()
    expect(reasonFor(result, join(root, 'notes.txt'))).toBe('not an image (.txt file)')
    expect(reasonFor(result, join(root, 'dog', 'README'))).toBe('not an image (no file extension)')
    expect(reasonFor(result, join(root, 'dog', 'IMG_0001.HEIC'))).toMatch(/HEIC photos are not supported/)
    expect(reasonFor(result, join(root, '__MACOSX'))).toMatch(/macOS/)
  })

  it('survives symbolic link loops and repeated links', () => {
    expect(reasonFor(result, join(root, 'cat', 'loop'))).toMatch(/already scanned as .*symbolic link loop/)
    expect(reasonFor(result, join(root, 'cat', 'dog-again'))).toMatch(/already scanned as .*dog/)
    expect(reasonFor(result, join(root, 'dog', 'broken.png'))).toBe('broken symbolic link')
    expect(result.files.some((f) => f.path.includes('loop') || f.path.includes('dog-again'))).toBe(false)
  })

  it('never lists a FIFO (reading one would hang the import)', () => {
    expect(result.files.some((f) => f.path.endsWith('pipe.jpg'))).toBe(false)
    const reason = reasonFor(result, join(root, 'dog', 'pipe.jpg'))
    if (reason !== undefined) expect(reason).toBe('not a regular file')
  })

  it('can be told the folder is flat after all', async () => {
    const flat = await scanFolder(root, { layout: 'flat' })
    expect(flat.layout).toBe('flat')
    expect(flat.classes).toEqual([])
    expect(flat.files).toHaveLength(result.files.length)
    expect(flat.files.every((f) => f.label === null)).toBe(true)
  })
})

describe('scanFolder: flat folders', () => {
  it('calls a folder of images without image-holding subfolders flat', async () => {
    const root = join(dir, 'flat')
    await writeImageFolder(root, { classes: 2, perClass: 2, size: 16, layout: 'flat' })
    await mkdir(join(root, 'empty'))
    await mkdir(join(root, 'docs'))
    await writeFile(join(root, 'docs', 'notes.txt'), 'x')
    const result = await scanFolder(root)
    expect(result.layout).toBe('flat')
    expect(result.classes).toEqual([])
    expect(result.files.map((f) => [f.path.slice(root.length + 1), f.label])).toEqual([
      ['class-0-0000.jpg', null],
      ['class-0-0001.jpg', null],
      ['class-1-0000.jpg', null],
      ['class-1-0001.jpg', null]
    ])
    expect(result.skipped.map((s) => s.path)).toEqual([join(root, 'docs', 'notes.txt')])
  })

  it('handles an empty folder', async () => {
    const root = join(dir, 'nothing')
    await mkdir(root)
    expect(await scanFolder(root)).toMatchObject({ layout: 'flat', files: [], skipped: [], classes: [] })
  })
})

describe('scanFolder: unusable folders', () => {
  it('names a folder that does not exist', async () => {
    const missing = join(dir, 'no-such-folder')
    const error = await scanFolder(missing).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ScanError)
    expect(error).toMatchObject({ code: 'not_found', path: missing })
    expect((error as Error).message).toContain(missing)
  })

  it('names a file given as the folder', async () => {
    const path = join(dir, 'a-file.png')
    await writeGrayscalePng(path)
    await expect(scanFolder(path)).rejects.toMatchObject({ code: 'not_a_directory', message: `Not a folder: ${path}` })
  })
})

describe('parseLabelCsv', () => {
  let root: string
  beforeAll(async () => {
    root = join(dir, 'csv')
    await mkdir(join(root, 'img', 'sub'), { recursive: true })
    for (const name of ['a.png', 'b.png', 'c, with comma.png', 'd.png', 'sub/e.png']) await writeGrayscalePng(join(root, 'img', name))
  })

  const write = async (name: string, text: string): Promise<string> => {
    const path = join(root, name)
    await writeFile(path, text)
    return path
  }

  it('reads a header, quotes, CRLF, a BOM and blank lines', async () => {
    const csv = await write(
      'good.csv',
      '\uFEFFfile,label\r\nimg/a.png,cat\r\n\r\n"img/c, with comma.png","big ""cat"""\r\nimg/sub/e.png, dog \r\n' + `${join(root, 'img', 'd.png')},dog`
    )
    const { entries, errors } = await parseLabelCsv(csv)
    expect(errors).toEqual([])
    expect(entries).toEqual([
      { path: join(root, 'img', 'a.png'), file: 'img/a.png', label: 'cat', line: 2 },
      { path: join(root, 'img', 'c, with comma.png'), file: 'img/c, with comma.png', label: 'big "cat"', line: 4 },
      { path: join(root, 'img', 'sub', 'e.png'), file: 'img/sub/e.png', label: 'dog', line: 5 },
      { path: join(root, 'img', 'd.png'), file: join(root, 'img', 'd.png'), label: 'dog', line: 6 }
    ])
  })

  it('treats the first row as data when it is not a header', async () => {
    const csv = await write('no-header.csv', 'img/a.png,cat\nimg/b.png,dog\n')
    const { entries, errors } = await parseLabelCsv(csv)
    expect(errors).toEqual([])
    expect(entries.map((e) => [e.line, e.label])).toEqual([
      [1, 'cat'],
      [2, 'dog']
    ])
  })

  it('reports each malformed line by number and keeps the good ones', async () => {
    const csv = await write(
      'bad.csv',
      [
        'filename,class', // 1
        'img/a.png,cat', // 2
        'img/b.png,cat,extra', // 3
        'img/missing.png,dog', // 4
        'img/d.png,', // 5
        'img/a.png,dog', // 6
        'img/notes.txt,cat', // 7
        '"img/b.png"x,cat', // 8
        'img/b.png,"multi', // 9
        'line"', // 10 (inside the quote of line 9)
        'img/sub/e.png,dog', // 11
        'img/d.png,"unterminated' // 12
      ].join('\n')
    )
    const { entries, errors } = await parseLabelCsv(csv)
    expect(entries.map((e) => [e.line, e.file, e.label])).toEqual([
      [2, 'img/a.png', 'cat'],
      [9, 'img/b.png', 'multi\nline'],
      [11, 'img/sub/e.png', 'dog']
    ])
    expect(errors.map((e) => e.line)).toEqual([3, 4, 5, 6, 7, 8, 12])
    const message = (line: number): string => errors.find((e) => e.line === line)!.message
    expect(message(3)).toBe('line 3: expected 2 fields (file,label), found 3')
    expect(message(4)).toBe('line 4: file not found: img/missing.png')
    expect(message(5)).toBe('line 5: empty label for img/d.png')
    expect(message(6)).toBe('line 6: img/a.png is already listed on line 2 with label "cat" (this line says "dog")')
    expect(message(7)).toBe('line 7: not an image file: img/notes.txt')
    expect(message(8)).toBe('line 8: unexpected text after a closing quote')
    expect(message(12)).toMatch(/^line 12: unterminated quoted field/)
  })

  it('names a CSV that does not exist', async () => {
    const missing = join(root, 'nope.csv')
    await expect(parseLabelCsv(missing)).rejects.toMatchObject({ name: 'ScanError', code: 'not_found', message: `File not found: ${missing}` })
  })
})
