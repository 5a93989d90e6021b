/** Content hashes: the identity of an image file (duplicate detection, thumbnail cache key). */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'

/**
 * sha256 of a file's bytes as lowercase hex, streamed so large files are never held in memory.
 * Rejects with the file-system error (ENOENT, EACCES, ...) when the file cannot be read.
 */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), hash)
  return hash.digest('hex')
}

/** sha256 of bytes already in memory; equals hashFile of a file holding the same bytes. */
export function hashBuffer(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}
