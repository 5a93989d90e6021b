import { loadImageBytes, type ImageProblem } from './decode'
import { idxImageToPng, readIdxImages, type IdxImages } from './idx'

/** Images imported from IDX files are stored as `<images file>#<index>`: there is no file per image. */
const IDX_REFERENCE = /^(.*)#(\d+)$/

const idxCache = new Map<string, Promise<IdxImages>>()

/** The bytes of an image as the dataset recorded it: a file, or a record of an IDX file (as PNG). */
export async function loadStoredImage(recordedPath: string): Promise<Buffer | ImageProblem> {
  const idx = IDX_REFERENCE.exec(recordedPath)
  if (!idx) return loadImageBytes(recordedPath)
  try {
    let images = idxCache.get(idx[1])
    if (!images) {
      images = readIdxImages(idx[1])
      idxCache.set(idx[1], images)
      if (idxCache.size > 4) idxCache.delete(idxCache.keys().next().value as string)
    }
    const parsed = await images
    const index = Number(idx[2])
    if (index >= parsed.count) return { ok: false, code: 'not_found', reason: `${idx[1]} has only ${parsed.count} images, not #${index}` }
    return await idxImageToPng(parsed, index)
  } catch (error) {
    idxCache.delete(idx[1])
    return { ok: false, code: 'unreadable', reason: error instanceof Error ? error.message : String(error) }
  }
}
