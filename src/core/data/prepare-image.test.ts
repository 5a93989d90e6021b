import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeDecompressionBomb, writeDuplicate, writeExifRotatedJpeg, writeTruncatedJpeg, writeZeroByteFile } from '../../../test/generators/images'
import { hashFile } from './hash'
import { prepareImage } from './prepare-image'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fs-prepare-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('prepareImage', () => {
  it('hashes, describes and thumbnails a good image; a duplicate reuses the thumbnail', async () => {
    const { path } = await writeExifRotatedJpeg(join(dir, 'photo.jpg'), 64, 32)
    const thumbnailDir = join(dir, 'thumbs')
    const result = await prepareImage(path, { thumbnailDir })
    if (!result.ok) throw new Error(result.reason)
    expect(result.hash).toBe(await hashFile(path))
    expect(result.bytes).toBe((await stat(path)).size)
    expect(result.info).toMatchObject({ width: 32, height: 64, orientation: 6 })
    expect((await stat(result.thumbnailPath)).isFile()).toBe(true)

    const copy = await writeDuplicate(path, join(dir, 'copy.jpg'))
    const again = await prepareImage(copy, { thumbnailDir })
    expect(again).toMatchObject({ ok: true, hash: result.hash, thumbnailPath: result.thumbnailPath })
  })

  it('reports bad files as problems, with the hash when the bytes were read', async () => {
    const thumbnailDir = join(dir, 'thumbs')
    const truncated = await prepareImage(await writeTruncatedJpeg(join(dir, 't.jpg')), { thumbnailDir })
    expect(truncated).toMatchObject({ ok: false, code: 'corrupt', hash: await hashFile(join(dir, 't.jpg')) })
    expect(truncated.ok ? '' : truncated.reason).toMatch(/^corrupt or truncated JPEG: /)
    expect(await prepareImage(await writeDecompressionBomb(join(dir, 'bomb.png')), { thumbnailDir })).toMatchObject({ ok: false, code: 'too_large' })
    expect(await prepareImage(await writeZeroByteFile(join(dir, 'zero.png')), { thumbnailDir })).toMatchObject({ ok: false, code: 'empty' })
    expect(await prepareImage(join(dir, 'missing.png'), { thumbnailDir })).toMatchObject({ ok: false, code: 'not_found' })
  })
})
