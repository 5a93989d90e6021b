import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashBuffer, hashFile } from './hash'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fs-hash-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('hashFile', () => {
  it('is the sha256 of the bytes, in hex', async () => {
    const path = join(dir, 'abc.txt')
    await writeFile(path, 'abc')
    expect(await hashFile(path)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  })

  it('agrees with hashBuffer on a file larger than one stream chunk', async () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 17)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff
    const path = join(dir, 'big.bin')
    await writeFile(path, bytes)
    expect(await hashFile(path)).toBe(hashBuffer(bytes))
  })

  it('hashes an empty file', async () => {
    const path = join(dir, 'empty')
    await writeFile(path, '')
    expect(await hashFile(path)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  })

  it('rejects with the file-system error for a missing file', async () => {
    await expect(hashFile(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
