import fs from 'node:fs'
import path from 'node:path'

interface OwnPackage {
  name: string
  version: string
}

let found: { root: string; pkg: OwnPackage } | null = null

/** Our package's folder, found by walking up: the same answer from src/ under tsx and from the bundle in out/. */
function locate(): { root: string; pkg: OwnPackage } {
  if (found) return found
  let dir = __dirname
  for (;;) {
    const file = path.join(dir, 'package.json')
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<OwnPackage>
      if (pkg.name === 'finetune-studio' && pkg.version) return (found = { root: dir, pkg: pkg as OwnPackage })
    }
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error(`Cannot find Finetune Studio's package.json above ${__dirname}`)
    dir = parent
  }
}

export function projectRoot(): string {
  return locate().root
}

export function appVersion(): string {
  return locate().pkg.version
}

export function builtRendererDir(): string {
  return path.join(projectRoot(), 'out', 'renderer')
}
