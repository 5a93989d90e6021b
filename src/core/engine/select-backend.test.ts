import * as tf from '@tensorflow/tfjs'
import { describe, expect, it } from 'vitest'
import { wasmConvGradientsInstalled } from './conv-grad'
import { selectBackend } from './select-backend'

describe('selectBackend', () => {
  it('skips the native backends that are not installed, takes wasm, and installs its conv gradient', async () => {
    const resolve = (name: string) => (name.startsWith('@tensorflow/tfjs-node') ? null : require.resolve(name))
    const selection = await selectBackend({ resolve })
    expect(selection.backend).toBe('wasm')
    expect(selection.skipped).toEqual([
      { name: 'tensorflow-gpu', reason: '@tensorflow/tfjs-node-gpu not installed' },
      { name: 'tensorflow', reason: '@tensorflow/tfjs-node not installed' }
    ])
    expect(tf.getBackend()).toBe('wasm')
    expect(selection.wasmConvGradients).toBe(true)
    expect(wasmConvGradientsInstalled()).toBe(true)
  })

  it('uses a forced backend, and switches back to it when called again', async () => {
    expect((await selectBackend({ forced: 'cpu' })).backend).toBe('cpu')
    expect(tf.getBackend()).toBe('cpu')
    await tf.setBackend('wasm')
    await selectBackend({ forced: 'cpu' })
    expect(tf.getBackend()).toBe('cpu')
  })

  it('a forced backend that cannot load is an error, not a fallback', async () => {
    const resolve = () => null
    await expect(selectBackend({ forced: 'tensorflow', resolve })).rejects.toThrow(/backend tensorflow was requested but cannot be used: @tensorflow\/tfjs-node not installed/)
  })
})
