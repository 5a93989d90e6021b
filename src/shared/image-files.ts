/**
 * Which files the studio imports as images, by extension, and why it leaves the others out:
 * one list for the importer (core/data/scan.ts) and for the page (a dropped file is named as
 * "not an image" before anything is sent). Pure string work: no Node, no DOM.
 */

/** Extensions sharp decodes here (lower case, with the dot). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif'])

/** Image formats a person might expect to work, with why they are skipped. */
const UNSUPPORTED_IMAGE_EXTENSIONS: ReadonlyMap<string, string> = new Map([
  ['.heic', 'HEIC photos are not supported: convert them to JPEG'],
  ['.heif', 'HEIF photos are not supported: convert them to JPEG'],
  ['.bmp', 'BMP images are not supported: convert them to PNG'],
  ['.svg', 'vector images (SVG) are not imported'],
  ['.cr2', 'camera RAW files are not supported: export them as JPEG'],
  ['.nef', 'camera RAW files are not supported: export them as JPEG'],
  ['.arw', 'camera RAW files are not supported: export them as JPEG'],
  ['.dng', 'camera RAW files are not supported: export them as JPEG']
])

/** The extension of a file name or path, lower case with the dot ('' when there is none). */
export function extensionOf(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? name
  const dot = base.lastIndexOf('.')
  return dot > 0 ? base.slice(dot).toLowerCase() : ''
}

/** True when the path's extension is one sharp decodes (case-insensitive). */
export function isImagePath(path: string): boolean {
  return IMAGE_EXTENSIONS.has(extensionOf(path))
}

/** Why a file that is not an image is left out, e.g. "not an image (.txt file)". */
export function nonImageReason(name: string): string {
  const extension = extensionOf(name)
  if (extension === '') return 'not an image (no file extension)'
  return UNSUPPORTED_IMAGE_EXTENSIONS.get(extension) ?? `not an image (${extension} file)`
}
