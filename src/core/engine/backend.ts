import { execFile } from 'node:child_process'
import type { BackendName, BackendReport, BackendStatus } from '../../shared/dto'

export interface Candidate {
  name: BackendName
  packageName: string
  /** JavaScript run in a child Node to prove the backend loads; `PKG` is its resolved path. */
  loadCheck: (pkg: string, tfjs: string) => string
  hint: string
}

const GPU_HINT = 'For GPU training install CUDA 11.2 + cuDNN 8.1 and run npm install @tensorflow/tfjs-node-gpu (Linux or Windows).'

/** In order of speed: training uses the first that loads. */
export const BACKEND_CANDIDATES: readonly Candidate[] = [
  {
    name: 'tensorflow-gpu',
    packageName: '@tensorflow/tfjs-node-gpu',
    loadCheck: (pkg) => `require(${JSON.stringify(pkg)})`,
    hint: GPU_HINT
  },
  {
    name: 'tensorflow',
    packageName: '@tensorflow/tfjs-node',
    loadCheck: (pkg) => `require(${JSON.stringify(pkg)})`,
    hint: 'npm install @tensorflow/tfjs-node gives native multi-threaded CPU training (it downloads libtensorflow while installing).'
  },
  {
    name: 'wasm',
    packageName: '@tensorflow/tfjs-backend-wasm',
    loadCheck: (pkg, tfjs) =>
      `const tf = require(${JSON.stringify(tfjs)}); require(${JSON.stringify(pkg)});` +
      `tf.setBackend('wasm').then((ok) => process.exit(ok ? 0 : 3), (e) => { console.error(e.message); process.exit(4) })`,
    hint: 'Reinstall the project dependencies (npm ci).'
  },
  {
    name: 'cpu',
    packageName: '@tensorflow/tfjs',
    loadCheck: (_pkg, tfjs) => `require(${JSON.stringify(tfjs)})`,
    hint: 'Reinstall the project dependencies (npm ci).'
  }
]

export function resolvePackage(name: string): string | null {
  try {
    return require.resolve(name)
  } catch {
    return null
  }
}

/** The error message of what a failed load printed, without Node's echo of the source and stack. */
export function loadFailureReason(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean)
  const thrown = lines.map((l) => /^(?:\w*Error|Uncaught \w+): (.+)$/.exec(l)?.[1]).find(Boolean)
  const telling = lines.find((l) => /cannot|not found|no such|undefined symbol/i.test(l) && !/^(at |throw )/.test(l))
  return (thrown ?? telling ?? lines[0] ?? 'failed to load').slice(0, 300)
}

/**
 * Runs a load check in a throwaway Node (a native TensorFlow that cannot find its CUDA libraries
 * may abort the process that loads it): null when it loaded, else why not.
 */
export function loadsInChild(script: string): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', script], { timeout: 120_000, env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } }, (error, _stdout, stderr) =>
      resolve(error ? loadFailureReason(String(stderr)) : null)
    )
  })
}

type Resolver = (packageName: string) => string | null

async function probe(candidate: Candidate, tfjs: string | null, resolve: Resolver): Promise<BackendStatus> {
  const base = { name: candidate.name, packageName: candidate.packageName }
  const pkg = resolve(candidate.packageName)
  if (!pkg || !tfjs) return { ...base, available: false, reason: `${candidate.packageName} not installed`, hint: candidate.hint }
  const failure = await loadsInChild(candidate.loadCheck(pkg, tfjs))
  if (failure !== null) return { ...base, available: false, reason: failure, hint: candidate.hint }
  return { ...base, available: true }
}

export function summarize(backends: BackendStatus[]): BackendReport {
  const chosen = backends.find((b) => b.available)
  if (!chosen) throw new Error('No TensorFlow.js backend can be loaded: reinstall the project dependencies (`npm ci`).')
  const label: Record<BackendName, string> = {
    'tensorflow-gpu': 'GPU (TensorFlow CUDA)',
    tensorflow: 'CPU (native TensorFlow)',
    wasm: 'CPU (WebAssembly SIMD)',
    cpu: 'CPU (plain JavaScript, slow)'
  }
  const gpu = backends.find((b) => b.name === 'tensorflow-gpu')
  const summary =
    chosen.name === 'tensorflow-gpu'
      ? `Training on ${label[chosen.name]}`
      : `Training on ${label[chosen.name]}; no GPU: ${gpu?.reason ?? 'unavailable'}`
  return { backends, selected: chosen.name, summary }
}

export async function probeCandidates(candidates: readonly Candidate[], resolve: Resolver = resolvePackage): Promise<BackendReport> {
  const tfjs = resolve('@tensorflow/tfjs')
  return summarize(await Promise.all(candidates.map((c) => probe(c, tfjs, resolve))))
}

let cached: Promise<BackendReport> | null = null

/** Which backends load on this machine, and which one training would use. Probed once per process. */
export function probeBackends(): Promise<BackendReport> {
  cached ??= probeCandidates(BACKEND_CANDIDATES)
  return cached
}
