/**
 * Everything the import needs from one image file, reading it once and decoding it once:
 * content hash, description, thumbnail.
 *
 * Calling hashFile, inspectImage and makeThumbnail separately reads the file three times and
 * decodes the pixels twice (inspectImage's check, then the thumbnail); here the thumbnail's
 * decode is the check. That is what makes an import of small JPEGs run at a few hundred
 * images per second (see the throughput note in the data layer's report).
 */
import { hashBuffer } from './hash'
import { inspectImage, loadImageBytes, type ImageInfo, type ImageProblem, type ImageSource } from './decode'
import { makeThumbnail, type ThumbnailOptions } from './thumbnails'

export interface PreparedImage {
  ok: true
  /** sha256 of the file's bytes, hex. */
  hash: string
  /** File size in bytes. */
  bytes: number
  info: ImageInfo
  thumbnailPath: string
}

export interface PrepareImageOptions extends ThumbnailOptions {
  /** The thumbnail cache directory (see makeThumbnail). */
  thumbnailDir: string
}

/** A bad file, with its hash when the bytes could be read (to spot a known-bad duplicate). */
export type PrepareImageProblem = ImageProblem & { hash?: string }

/**
 * Reads, hashes, inspects and thumbnails one image. A bad file comes back as a problem value
 * (as from inspectImage), so the caller records it and continues.
 *
 * When a thumbnail for the same hash is already cached, the pixels are not decoded again:
 * identical bytes decoded cleanly before.
 */
export async function prepareImage(source: ImageSource, options: PrepareImageOptions): Promise<PreparedImage | PrepareImageProblem> {
  const bytes = await loadImageBytes(source)
  if (!Buffer.isBuffer(bytes)) return bytes
  const hash = hashBuffer(bytes)
  const info = await inspectImage(bytes, { verifyPixels: false })
  if (!info.ok) return { ...info, hash }
  const thumbnail = await makeThumbnail(bytes, options.thumbnailDir, hash, options)
  if (!thumbnail.ok) return { ...thumbnail, hash }
  return { ok: true, hash, bytes: bytes.length, info, thumbnailPath: thumbnail.path }
}
