/**
 * What a drop on the Datasets view does. Pure: the view turns the drag event into DroppedItems
 * (a name, whether it is a folder, and the path where the desktop app can tell it) and acts on
 * the plan. The rules:
 *
 * - Nothing but files that are not images: nothing is imported; each file is named with why.
 * - In the desktop app, with paths: one folder imports as a folder (class subfolders label it),
 *   one CSV as a file,label list, and files (no folders) import as single files; the import
 *   report names the ones that are not images. Several folders, or folders with files, are
 *   refused: one folder at a time.
 * - In a browser (or a desktop app that cannot tell the path): the page never learns where a
 *   dropped file lives, so the folder browser opens instead, with a word on why.
 */
import type { ImportSource } from '../../../shared/dto'
import { extensionOf, isImagePath, nonImageReason } from '../../../shared/image-files'

export interface DroppedItem {
  name: string
  /** A folder (the drag's file-system entry says so). */
  folder: boolean
  /** Where it is on disk: only the desktop app can tell (webUtils.getPathForFile). */
  path?: string
}

export type DropPlan =
  | { kind: 'import'; source: ImportSource; label: string }
  | { kind: 'refuse'; message: string; files: { name: string; reason: string }[] }
  | { kind: 'browse'; message: string }

const isCsv = (name: string) => extensionOf(name) === '.csv'

export function planDrop(items: readonly DroppedItem[], desktop: boolean): DropPlan {
  if (items.length === 0) return { kind: 'refuse', message: 'Nothing to import was dropped: drop a folder of images, or image files.', files: [] }
  const notImages = items.filter((i) => !i.folder && !isImagePath(i.name) && !isCsv(i.name))
  if (notImages.length === items.length) {
    return {
      kind: 'refuse',
      message: notImages.length === 1 ? `${notImages[0].name} is not an image: nothing was imported.` : `None of the ${notImages.length} dropped files is an image: nothing was imported.`,
      files: notImages.map((i) => ({ name: i.name, reason: nonImageReason(i.name) }))
    }
  }
  const paths = items.map((i) => i.path).filter((p): p is string => typeof p === 'string' && p.length > 0)
  if (!desktop || paths.length !== items.length) {
    return {
      kind: 'browse',
      message: desktop
        ? 'This desktop app cannot tell where the dropped files are. Choose the folder in the dialog instead.'
        : 'A web page never learns where dropped files live, so drag-and-drop imports work in the desktop app. Pick the folder here instead.'
    }
  }
  const folders = items.filter((i) => i.folder)
  if (folders.length === 1 && items.length === 1) return { kind: 'import', source: { kind: 'folder', path: paths[0] }, label: items[0].name }
  if (folders.length > 0) {
    return { kind: 'refuse', message: 'Drop one folder at a time (or only image files): each folder is its own import.', files: folders.map((f) => ({ name: f.name, reason: 'a folder' })) }
  }
  if (items.length === 1 && isCsv(items[0].name)) return { kind: 'import', source: { kind: 'csv', path: paths[0] }, label: items[0].name.replace(/\.csv$/i, '') }
  return { kind: 'import', source: { kind: 'files', paths }, label: 'dropped images' }
}
