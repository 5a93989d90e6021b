/**
 * Sets the TensorFlow.js backend of the process that trains (the trainer child, or a test):
 * the fastest that loads, in the order tensorflow-gpu > tensorflow > wasm > cpu, or the one
 * asked for. On wasm it installs the Conv2D gradient that makes conv layers trainable there.
 */
import * as tf from '@tensorflow/tfjs'
import type { BackendName } from '../../shared/dto'
import { BACKEND_CANDIDATES, loadsInChild, resolvePackage } from './backend'
import { installWasmConvGradients } from './conv-grad'
import { installWasmMatMulGradient } from './matmul-grad'
import { installSharingIdentity } from './wasm-identity'

export const BACKEND_ORDER: readonly BackendName[] = BACKEND_CANDIDATES.map((c) => c.name)

export interface BackendSelection {
  backend: BackendName
  /** Backends tried before it (or the forced one's failure is thrown instead), with why. */
  skipped: { name: BackendName; reason: string }[]
  /** The wasm Conv2D gradient is installed (conv layers can train). */
  wasmConvGradients: boolean
}

export interface SelectBackendOptions {
  /** Use exactly this backend; failing to load it is an error, not a fallback. */
  forced?: BackendName
  /** Resolves a package to its entry file, or null when it is not installed (tests). */
  resolve?: (packageName: string) => string | null
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** Tries one backend; returns null when it is now the active one, else why not. */
async function tryBackend(name: BackendName, resolve: (packageName: string) => string | null): Promise<string | null> {
  const candidate = BACKEND_CANDIDATES.find((c) => c.name === name)
  if (candidate === undefined) return `unknown backend ${name}`
  try {
    if (name === 'tensorflow-gpu' || name === 'tensorflow') {
      const pkg = resolve(candidate.packageName)
      const tfjs = resolve('@tensorflow/tfjs')
      if (pkg === null || tfjs === null) return `${candidate.packageName} not installed`
      const failure = await loadsInChild(candidate.loadCheck(pkg, tfjs))
      if (failure !== null) return failure
      await import(pkg)
      // Both native packages register their backend as 'tensorflow'.
      return (await tf.setBackend('tensorflow')) ? null : `${candidate.packageName} loaded but the 'tensorflow' backend did not initialize`
    }
    if (name === 'wasm') {
      await import('@tensorflow/tfjs-backend-wasm')
      if (!(await tf.setBackend('wasm'))) return 'the wasm backend did not initialize'
      installWasmTrainingKernels()
      return null
    }
    return (await tf.setBackend('cpu')) ? null : 'the cpu backend did not initialize'
  } catch (error) {
    return errorMessage(error)
  }
}

/** What makes training on wasm possible and fast: Conv2D and BatchMatMul gradients, a sharing clone. */
function installWasmTrainingKernels(): void {
  installWasmConvGradients()
  installWasmMatMulGradient()
  installSharingIdentity()
}

const selections = new Map<string, Promise<BackendSelection>>()

async function select(options: SelectBackendOptions): Promise<BackendSelection> {
  const resolve = options.resolve ?? resolvePackage
  const skipped: BackendSelection['skipped'] = []
  for (const name of options.forced === undefined ? BACKEND_ORDER : [options.forced]) {
    const failure = await tryBackend(name, resolve)
    if (failure === null) {
      await tf.ready()
      return { backend: name, skipped, wasmConvGradients: name === 'wasm' }
    }
    if (options.forced !== undefined) throw new Error(`backend ${name} was requested but cannot be used: ${failure}`)
    skipped.push({ name, reason: failure })
  }
  throw new Error(`no TensorFlow.js backend can be used: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`)
}

/**
 * Makes the best available backend (or `forced`) the active one and returns which it is and why
 * the faster ones were passed over. The probing happens once per process and choice; calling it
 * again (e.g. another run in the same process) only re-activates the backend it chose.
 */
export async function selectBackend(options: SelectBackendOptions = {}): Promise<BackendSelection> {
  const key = options.forced ?? 'auto'
  let selection = options.resolve === undefined ? selections.get(key) : undefined
  if (selection === undefined) {
    selection = select(options)
    if (options.resolve === undefined) selections.set(key, selection)
    selection.catch(() => selections.delete(key))
  }
  const result = await selection
  const active = result.backend === 'tensorflow-gpu' ? 'tensorflow' : result.backend
  if (tf.getBackend() !== active) await tf.setBackend(active)
  if (result.backend === 'wasm') installWasmTrainingKernels()
  return result
}
