import { describe, it, expect } from 'vitest'
import { ESLint } from 'eslint'
import fs from 'node:fs'
import path from 'node:path'

const ROOT = path.resolve(__dirname, '../..')
const eslint = new ESLint({ cwd: ROOT })

/** Lints a fixture as though it lived at `virtualPath`, which decides which layer's rules apply. */
async function layeringErrors(fixture: string, virtualPath: string): Promise<string[]> {
  const code = fs.readFileSync(path.join(ROOT, 'test/fixtures/layering', fixture), 'utf8')
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, virtualPath) })
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message)
}

describe('the layering lint rule', () => {
  it.each([
    ['renderer-imports-core.ts', 'src/renderer/src/views/fixture.ts', /no core, Node or Electron/],
    ['renderer-imports-node.ts', 'src/renderer/src/views/fixture.ts', /no core, Node or Electron/],
    ['core-imports-electron.ts', 'src/core/services/fixture.ts', /never Electron/],
    ['shared-imports-core.ts', 'src/shared/fixture.ts', /imports nothing of ours outside shared/],
    ['preload-imports-core.ts', 'src/preload/fixture.ts', /imports only shared/]
  ])('fails %s placed at %s', async (fixture, at, message) => {
    const errors = await layeringErrors(fixture, at)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(message)
  })

  it('lets the renderer import shared and packages whose names merely contain a layer name', async () => {
    expect(await layeringErrors('renderer-allowed.ts', 'src/renderer/src/views/fixture.ts')).toEqual([])
  })

  it('lets core import the same Node modules the renderer may not', async () => {
    expect(await layeringErrors('renderer-imports-node.ts', 'src/core/services/fixture.ts')).toEqual([])
  })
})
