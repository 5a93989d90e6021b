import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { noise, writeExifRotatedJpeg, writeGrayscalePng, writeImageFolder, writeTruncatedJpeg } from '../../../test/generators/images'
import { hashFile } from './hash'
import { makeThumbnail, thumbnailPath } from './thumbnails'

let dir: string
let cache: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fs-thumbs-'))
  cache = join(dir, 'cache')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function wide(name: string, seed: number): Promise<{ path: string; hash: string }> {
  const path = join(dir, name)
  await sharp(noise(600, 300, 3, seed), { raw: { width: 600, height: 300, channels: 3 } }).jpeg().toFile(path)
  return { path, hash: await hashFile(path) }
}

describe('makeThumbnail', () => {
  it('writes a thumbnail fitting inside the size, keyed by content hash', async () => {
    const { path, hash } = await wide('wide.jpg', 1)
    const result = await makeThumbnail(path, cache, hash)
    expect(result).toEqual({ ok: true, path: join(cache, hash.slice(0, 2), `${hash}.jpg`), created: true })
    expect(await sharp(join(cache, hash.slice(0, 2), `${hash}.jpg`)).metadata()).toMatchObject({ format: 'jpeg', width: 256, height: 128 })
  })

  it('is made once and reused, without reading the source again', async () => {
    const { path, hash } = await wide('reused.jpg', 2)
    const first = await makeThumbnail(path, cache, hash, { size: 64 })
    expect(first).toMatchObject({ ok: true, created: true })
    if (!first.ok) return
    const before = await stat(first.path)
    await rm(path)
    const second = await makeThumbnail(path, cache, hash, { size: 64 })
    expect(second).toEqual({ ok: true, path: first.path, created: false })
    const after = await stat(first.path)
    expect(after.mtimeMs).toBe(before.mtimeMs)
    expect(after.ino).toBe(before.ino)
  })

  it('applies the EXIF orientation', async () => {
    const rotated = await writeExifRotatedJpeg(join(dir, 'rotated.jpg'), 64, 32)
    const result = await makeThumbnail(rotated.path, cache, await hashFile(rotated.path))
    if (!result.ok) throw new Error(result.reason)
    const { data, info } = await sharp(result.path).raw().toBuffer({ resolveWithObject: true })
    expect(info).toMatchObject({ width: 32, height: 64 })
    const topRight = [...data.subarray((info.width - 1) * 3, info.width * 3)]
    expect(topRight[0]).toBeGreaterThan(200) // the stored top-left red quadrant
    expect(topRight[2]).toBeLessThan(60)
  })

  it('does not enlarge a small image, and writes WebP on request', async () => {
    const path = join(dir, 'small.png')
    await writeGrayscalePng(path, 50, 16)
    const result = await makeThumbnail(path, cache, await hashFile(path), { format: 'webp' })
    if (!result.ok) throw new Error(result.reason)
    expect(result.path).toMatch(/\.webp$/)
    expect(await sharp(result.path).metadata()).toMatchObject({ format: 'webp', width: 16, height: 16 })
  })

  it('reports a bad image as a problem and leaves nothing in the cache', async () => {
    const path = await writeTruncatedJpeg(join(dir, 'truncated.jpg'))
    const hash = await hashFile(path)
    const result = await makeThumbnail(path, cache, hash)
    expect(result).toMatchObject({ ok: false, code: 'corrupt' })
    await expect(stat(thumbnailPath(cache, hash))).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('survives concurrent requests for one hash and leaves no temporary files', async () => {
    const [image] = await writeImageFolder(join(dir, 'set'), { classes: 1, perClass: 1, size: 300 })
    const hash = await hashFile(image.path)
    const results = await Promise.all(Array.from({ length: 6 }, () => makeThumbnail(image.path, cache, hash)))
    expect(results.every((r) => r.ok && r.path === thumbnailPath(cache, hash))).toBe(true)
    const shards = await readdir(cache)
    const files = (await Promise.all(shards.map((s) => readdir(join(cache, s))))).flat()
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([])
    expect(files.filter((f) => f.startsWith(hash))).toEqual([`${hash}.jpg`])
  })

  it('refuses a key that is not a hex hash', () => {
    expect(() => thumbnailPath(cache, '../../etc/passwd')).toThrow(/not a hex content hash/)
  })
})
