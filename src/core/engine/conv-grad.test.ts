import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as tf from '@tensorflow/tfjs'
import '@tensorflow/tfjs-backend-wasm'
import { installWasmConvGradients, rotateFilter, uninstallWasmConvGradients, wasmConvGradientsInstalled } from './conv-grad'
import { deterministicValues, expectRelativelyClose, sizeOf } from '../../../test/generators/gradient-checks'

type Pad = tf.Conv2DAttrs['pad']

interface Case {
  name: string
  x: [number, number, number, number]
  w: [number, number, number, number]
  strides: number | [number, number]
  pad: Pad
}

const CASES: Case[] = [
  { name: 'Cin=3, batch 1, odd 5x7, same', x: [1, 5, 7, 3], w: [3, 3, 3, 4], strides: 1, pad: 'same' },
  { name: 'batch 2, 9x9, 8->16, same', x: [2, 9, 9, 8], w: [3, 3, 8, 16], strides: 1, pad: 'same' },
  { name: 'valid, 6x5', x: [3, 6, 5, 4], w: [3, 3, 4, 5], strides: 1, pad: 'valid' },
  { name: 'even 2x2 kernel, same (asymmetric pad)', x: [2, 7, 6, 3], w: [2, 2, 3, 3], strides: 1, pad: 'same' },
  { name: '1x1 kernel', x: [2, 4, 3, 2], w: [1, 1, 2, 3], strides: 1, pad: 'valid' },
  { name: 'explicit padding', x: [2, 6, 5, 3], w: [3, 3, 3, 2], strides: 1, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  { name: 'stride 2, same, odd 9x8', x: [2, 9, 8, 3], w: [3, 3, 3, 4], strides: 2, pad: 'same' },
  { name: 'strides [1,2], valid', x: [1, 7, 9, 2], w: [3, 2, 2, 3], strides: [1, 2], pad: 'valid' },
  { name: 'stride 3, valid, rows past the last window', x: [2, 11, 10, 2], w: [3, 3, 2, 3], strides: 3, pad: 'valid' },
  { name: '32x32, Cin 32', x: [2, 32, 32, 32], w: [3, 3, 32, 8], strides: 1, pad: 'same' }
]

type Conv = (x: tf.Tensor4D, w: tf.Tensor4D, c: Case) => tf.Tensor
const plain: Conv = (x, w, c) => tf.conv2d(x, w, c.strides, c.pad)
/** What a tf.layers Conv2D with the default 'linear' activation runs: a custom gradient. */
const fusedLinear: Conv = (x, w, c) => tf.fused.conv2d({ x, filter: w, strides: c.strides, pad: c.pad as 'same' | 'valid' | number, activation: 'linear' })

/** dL/dx and dL/dW of L = sum(conv(x, w) * r), r fixed, on the active backend. */
function gradients(c: Case, conv: Conv = plain): { dx: Float32Array; dw: Float32Array } {
  return tf.tidy(() => {
    const x = tf.tensor4d(deterministicValues(sizeOf(c.x), 1), c.x)
    const w = tf.tensor4d(deterministicValues(sizeOf(c.w), 2), c.w)
    const yShape = tf.conv2d(x, w, c.strides, c.pad).shape
    const r = tf.tensor(deterministicValues(sizeOf(yShape), 3), yShape)
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(a as tf.Tensor4D, b as tf.Tensor4D, c), r)))([x, w])
    return { dx: dx.dataSync() as Float32Array, dw: dw.dataSync() as Float32Array }
  })
}

const reference = new Map<string, { dx: Float32Array; dw: Float32Array }>()

beforeAll(async () => {
  await tf.setBackend('cpu')
  for (const c of CASES) reference.set(c.name, gradients(c))
  expect(await tf.setBackend('wasm')).toBe(true)
})

afterAll(() => {
  uninstallWasmConvGradients()
})

describe('wasm conv gradients', () => {
  it('the stock wasm backend cannot train a conv filter (why this module exists)', () => {
    uninstallWasmConvGradients()
    expect(() => gradients(CASES[0])).toThrow(/Conv2DBackpropFilter/)
  })

  it.each(CASES)('match the cpu backend: $name', (c) => {
    installWasmConvGradients()
    expect(tf.getBackend()).toBe('wasm')
    const got = gradients(c)
    const want = reference.get(c.name)!
    expectRelativelyClose(got.dx, want.dx, `${c.name} dx`)
    expectRelativelyClose(got.dw, want.dw, `${c.name} dW`)
  })

  it.each(CASES.filter((c) => typeof c.pad === 'string'))('the fused linear conv path (wasm Conv2DBackpropFilter kernel) matches the cpu backend: $name', (c) => {
    installWasmConvGradients()
    gradients(c, fusedLinear)
    const dataIds = tf.engine().backend.numDataIds()
    const got = gradients(c, fusedLinear)
    // The kernel frees its intermediates on the backend (the engine never sees them).
    expect(tf.engine().backend.numDataIds()).toBe(dataIds)
    const want = reference.get(c.name)!
    expectRelativelyClose(got.dx, want.dx, `${c.name} dx`)
    expectRelativelyClose(got.dw, want.dw, `${c.name} dW`)
  })

  it('rotates a filter 180 degrees and swaps its channels', () => {
    const w = tf.tensor4d(deterministicValues(2 * 3 * 4 * 5, 6), [2, 3, 4, 5])
    const r = rotateFilter(w)
    expect(r.shape).toEqual([2, 3, 5, 4])
    const want = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2])
    expect(Array.from(r.dataSync())).toEqual(Array.from(want.dataSync()))
    tf.dispose([w, r, want])
  })

  it('leaves other backends on the stock gradient', async () => {
    installWasmConvGradients()
    await tf.setBackend('cpu')
    try {
      // The stock cpu gradient calls the Conv2DBackpropFilter kernel; ours never does.
      const kernels: string[] = []
      const profile = await tf.profile(() => {
        gradients(CASES[0])
      })
      for (const k of profile.kernels) kernels.push(k.name)
      expect(kernels).toContain('Conv2DBackpropFilter')
    } finally {
      await tf.setBackend('wasm')
    }
    const profile = await tf.profile(() => {
      gradients(CASES[0])
    })
    expect(profile.kernels.map((k) => k.name)).not.toContain('Conv2DBackpropFilter')
    expect(wasmConvGradientsInstalled()).toBe(true)
  })

  it('trains a small conv net on wasm: the loss goes down and the conv filters change', async () => {
    installWasmConvGradients()
    // 8x8 grey images with a bright 2x2 blob; the class is the quadrant it sits in.
    const n = 64
    const xs = new Float32Array(n * 8 * 8)
    const labels: number[] = []
    const noise = deterministicValues(n * 64, 7)
    for (let i = 0; i < n; i++) {
      const q = i % 4
      labels.push(q)
      const r0 = (q >> 1) * 4 + 1 + (i % 2)
      const c0 = (q & 1) * 4 + 1 + ((i >> 2) % 2)
      for (let p = 0; p < 64; p++) xs[i * 64 + p] = 0.1 * noise[i * 64 + p]
      for (const [dr, dc] of [[0, 0], [0, 1], [1, 0], [1, 1]]) xs[i * 64 + (r0 + dr) * 8 + c0 + dc] += 1
    }
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        // Default 'linear' activation: the fused conv path, trained through the wasm kernel.
        tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
        tf.layers.reLU(),
        tf.layers.flatten(),
        tf.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) })
      ]
    })
    model.compile({ optimizer: tf.train.sgd(0.5), loss: 'categoricalCrossentropy' })
    const x = tf.tensor4d(xs, [n, 8, 8, 1])
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 4)
    const convs = [model.layers[0], model.layers[2]]
    const before = convs.map((l) => l.getWeights()[0].dataSync().slice())
    const history = await model.fit(x, y, { epochs: 30, batchSize: 16, shuffle: false, verbose: 0 })
    const losses = history.history.loss as number[]
    const after = convs.map((l) => l.getWeights()[0].dataSync().slice())
    tf.dispose([x, y])
    model.dispose()
    expect(tf.getBackend()).toBe('wasm')
    expect(losses.every(Number.isFinite)).toBe(true)
    expect(losses[losses.length - 1]).toBeLessThan(0.5 * losses[0])
    for (const [i, b] of before.entries()) {
      let moved = 0
      for (let j = 0; j < b.length; j++) moved = Math.max(moved, Math.abs(after[i][j] - b[j]))
      expect(moved, `conv layer ${i}`).toBeGreaterThan(1e-3)
    }
  })
})
