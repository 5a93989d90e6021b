import { describe, it, expect } from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { BACKEND_CANDIDATES, loadFailureReason, probeBackends, probeCandidates, type Candidate } from './backend'

describe('backend selection', () => {
  it('reports every backend and uses the first one that loads', async () => {
    const report = await probeBackends()
    expect(report.backends.map((b) => b.name)).toEqual(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'])
    // wasm and cpu are plain dependencies: they must load everywhere.
    expect(report.backends.find((b) => b.name === 'wasm')?.available).toBe(true)
    expect(report.selected).toBe(report.backends.find((b) => b.available)?.name)
    for (const unavailable of report.backends.filter((b) => !b.available)) {
      expect(unavailable.reason, unavailable.name).toBeTruthy()
      expect(unavailable.hint, unavailable.name).toBeTruthy()
    }
    expect(report.summary).toMatch(/^Training on /)
  })

  it('catches a GPU package that installs but cannot load its CUDA libraries, and skips it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-fake-gpu-'))
    const fake = path.join(dir, 'index.js')
    fs.writeFileSync(
      fake,
      "throw new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory')\n"
    )
    const gpu: Candidate = { ...BACKEND_CANDIDATES[0], loadCheck: (pkg) => `require(${JSON.stringify(pkg)})` }
    const resolve = (name: string) => (name === gpu.packageName ? fake : require.resolve(name))
    const report = await probeCandidates([gpu, BACKEND_CANDIDATES[3]], resolve)
    expect(report.backends[0]).toMatchObject({ name: 'tensorflow-gpu', available: false, reason: 'libcudart.so.11.0: cannot open shared object file: No such file or directory' })
    expect(report.selected).toBe('cpu')
    expect(report.summary).toContain('libcudart.so.11.0')
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('reduces a load failure to the line that says what is missing', () => {
    const stderr = [
      '/app/node_modules/@tensorflow/tfjs-node-gpu/dist/index.js:49',
      '    throw e;',
      '    ^',
      '',
      'Error: libcudnn.so.8: cannot open shared object file: No such file or directory',
      '    at Module._extensions..node (node:internal/modules/cjs/loader:1460:18)'
    ].join('\n')
    expect(loadFailureReason(stderr)).toBe('libcudnn.so.8: cannot open shared object file: No such file or directory')
  })
})
