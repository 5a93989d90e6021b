import { describe, expect, it } from 'vitest'
import { planDrop } from './drop-plan'

describe('planDrop: what a drop on the Datasets view does', () => {
  it('refuses files that are not images, naming each with the reason, on desktop and web alike', () => {
    for (const desktop of [true, false]) {
      expect(planDrop([{ name: 'notes.txt', folder: false, path: desktop ? '/x/notes.txt' : undefined }], desktop)).toEqual({
        kind: 'refuse',
        message: 'notes.txt is not an image: nothing was imported.',
        files: [{ name: 'notes.txt', reason: 'not an image (.txt file)' }]
      })
    }
    const two = planDrop([{ name: 'a.pdf', folder: false }, { name: 'IMG_1.HEIC', folder: false }], false)
    expect(two).toMatchObject({ kind: 'refuse', message: 'None of the 2 dropped files is an image: nothing was imported.' })
    expect(two.kind === 'refuse' && two.files.map((f) => f.reason)).toEqual(['not an image (.pdf file)', 'HEIC photos are not supported: convert them to JPEG'])
  })

  it('imports what the desktop app can locate: a folder, a CSV, or image files', () => {
    expect(planDrop([{ name: 'pets', folder: true, path: '/home/me/pets' }], true)).toEqual({ kind: 'import', source: { kind: 'folder', path: '/home/me/pets' }, label: 'pets' })
    expect(planDrop([{ name: 'labels.csv', folder: false, path: '/d/labels.csv' }], true)).toEqual({ kind: 'import', source: { kind: 'csv', path: '/d/labels.csv' }, label: 'labels' })
    // Mixed files: the images import, the import report names the others.
    expect(
      planDrop(
        [
          { name: 'a.jpg', folder: false, path: '/d/a.jpg' },
          { name: 'b.txt', folder: false, path: '/d/b.txt' }
        ],
        true
      )
    ).toEqual({ kind: 'import', source: { kind: 'files', paths: ['/d/a.jpg', '/d/b.txt'] }, label: 'dropped images' })
  })

  it('refuses several folders at once, and opens the folder browser where the path is unknown', () => {
    expect(planDrop([{ name: 'a', folder: true, path: '/a' }, { name: 'b', folder: true, path: '/b' }], true)).toMatchObject({ kind: 'refuse', files: [{ name: 'a' }, { name: 'b' }] })
    expect(planDrop([{ name: 'pets', folder: true }], false)).toMatchObject({ kind: 'browse', message: expect.stringContaining('A web page never learns') })
    expect(planDrop([{ name: 'pets', folder: true, path: '' }], true)).toMatchObject({ kind: 'browse', message: expect.stringContaining('cannot tell where') })
    expect(planDrop([], true)).toMatchObject({ kind: 'refuse', files: [] })
  })
})
