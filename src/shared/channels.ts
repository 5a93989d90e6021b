/**
 * Names only, no schemas: the sandboxed preload imports this without pulling zod in.
 * `api.ts` checks at compile time that its methods are exactly these.
 */
export const METHOD_NAMES = [
  'system.info',
  'datasets.list',
  'datasets.create',
  'datasets.rename',
  'datasets.delete',
  'datasets.stats',
  'datasets.configureSplits',
  'imports.start',
  'imports.cancel',
  'imports.report',
  'imports.list',
  'images.page',
  'images.setStatus',
  'labels.set',
  'labels.undo',
  'labels.redo',
  'classes.list',
  'classes.create',
  'classes.rename',
  'classes.merge',
  'classes.delete',
  'files.browse',
  'weights.inspect',
  'runs.start',
  'runs.list',
  'runs.get',
  'runs.metrics',
  'runs.pause',
  'runs.resume',
  'runs.stop',
  'plans.presets',
  'plans.make',
  'plans.evaluate'
] as const

export type MethodNameList = (typeof METHOD_NAMES)[number]

export function methodChannel(method: MethodNameList): string {
  return `studio:call:${method}`
}

export const EVENT_CHANNEL = 'studio:event'

/**
 * Electron's scheme for thumbnails: `studio-thumb://image/<imageId>` (`?size=preview` for the
 * large rendition, see renditions.ts). Web mode uses `/thumbnails/<imageId>`.
 */
export const THUMBNAIL_SCHEME = 'studio-thumb'

/** Desktop only: the native folder picker (web mode browses with files.browse instead). */
export const PICK_FOLDER_CHANNEL = 'studio:pick-folder'
