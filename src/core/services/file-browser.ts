import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { FolderListing } from '../../shared/dto'
import { ApiError } from '../../shared/errors'
import { isImagePath } from '../data/scan'

/**
 * Web mode's folder browser: the page may look into the user's home and the data directory,
 * nowhere else (symbolic links are resolved before the check).
 */
export async function browseFolder(requested: string | undefined, dataDir: string): Promise<FolderListing> {
  const roots = [
    { label: 'Home', path: await real(os.homedir()) },
    { label: 'Studio data', path: await real(dataDir) }
  ].filter((r, i, all) => r.path && all.findIndex((o) => o.path === r.path) === i) as { label: string; path: string }[]
  const target = await real(path.resolve(requested ?? roots[0].path))
  if (!target) throw new ApiError({ code: 'not_found', message: `${requested}: no such folder`, fields: [{ path: 'path', message: 'does not exist' }] })
  const root = roots.find((r) => target === r.path || target.startsWith(r.path + path.sep))
  if (!root) {
    throw new ApiError({ code: 'invalid_input', message: `${target} is outside your home folder and the studio's data folder`, fields: [{ path: 'path', message: 'outside the folders the browser may show' }] })
  }
  let dirents: import('node:fs').Dirent[]
  try {
    dirents = await fs.readdir(target, { withFileTypes: true })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'ENOTDIR' ? 'not a folder' : String(code)
    throw new ApiError({ code: 'invalid_input', message: `Cannot open ${target}: ${why}`, fields: [{ path: 'path', message: why }] })
  }
  const visible = dirents.filter((d) => !d.name.startsWith('.'))
  const folders = visible.filter((d) => d.isDirectory()).map((d) => ({ name: d.name, path: path.join(target, d.name) }))
  const images = visible.filter((d) => d.isFile() && isImagePath(d.name)).length
  const csvFiles = visible.filter((d) => d.isFile() && d.name.toLowerCase().endsWith('.csv')).map((d) => ({ name: d.name, path: path.join(target, d.name) }))
  folders.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }))
  return { path: target, parent: target === root.path ? null : path.dirname(target), roots, folders, imageCount: images, csvFiles }
}

async function real(p: string): Promise<string> {
  return fs.realpath(p).catch(() => '')
}
