import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as tf from '@tensorflow/tfjs'
import '@tensorflow/tfjs-backend-wasm'
import { flagFreeProduct, installWasmMatMulGradient, uninstallWasmMatMulGradient } from './matmul-grad'
import { deterministicValues, expectRelativelyClose, sizeOf } from '../../../test/generators/gradient-checks'

interface Case {
  name: string
  a: number[]
  b: number[]
  transposeA: boolean
  transposeB: boolean
}

const CASES: Case[] = [
  { name: 'dense layer: [8, 300] · [300, 20]', a: [8, 300], b: [300, 20], transposeA: false, transposeB: false },
  { name: 'wide kernel: [4, 50] · [50, 600]', a: [4, 50], b: [50, 600], transposeA: false, transposeB: false },
  { name: 'transposeA', a: [30, 6], b: [30, 9], transposeA: true, transposeB: false },
  { name: 'transposeB', a: [6, 30], b: [9, 30], transposeA: false, transposeB: true },
  { name: 'both transposed', a: [30, 6], b: [9, 30], transposeA: true, transposeB: true },
  { name: 'batched, rank 3', a: [3, 5, 7], b: [3, 7, 4], transposeA: false, transposeB: false },
  { name: 'batched, both transposed', a: [2, 7, 5], b: [2, 4, 7], transposeA: true, transposeB: true },
]

/** dL/da and dL/db of L = sum(matMul(a, b) * r), r fixed, on the active backend. */
function gradients(c: Case): { da: Float32Array; db: Float32Array } {
  return tf.tidy(() => {
    const a = tf.tensor(deterministicValues(sizeOf(c.a), 1), c.a)
    const b = tf.tensor(deterministicValues(sizeOf(c.b), 2), c.b)
    const yShape = tf.matMul(a, b, c.transposeA, c.transposeB).shape
    const r = tf.tensor(deterministicValues(sizeOf(yShape), 3), yShape)
    const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, c.transposeA, c.transposeB), r)))([a, b])
    return { da: da.dataSync() as Float32Array, db: db.dataSync() as Float32Array }
  })
}

const reference = new Map<string, { da: Float32Array; db: Float32Array }>()

beforeAll(async () => {
  await tf.setBackend('cpu')
  for (const c of CASES) reference.set(c.name, gradients(c))
  expect(await tf.setBackend('wasm')).toBe(true)
  installWasmMatMulGradient()
})

afterAll(() => {
  uninstallWasmMatMulGradient()
})

describe('wasm BatchMatMul gradient', () => {
  it.each(CASES)('matches the cpu backend: $name', (c) => {
    const got = gradients(c)
    const want = reference.get(c.name)!
    expectRelativelyClose(got.da, want.da, `${c.name} da`)
    expectRelativelyClose(got.db, want.db, `${c.name} db`)
  })

  it('runs no product with a transpose flag on wasm (the stock gradient runs two)', () => {
    const flagsOfProducts = (): boolean[] => {
      const engine = tf.engine() as unknown as { runKernel: (name: string, inputs: unknown, attrs: Record<string, unknown>) => unknown }
      const runKernel = engine.runKernel
      const flags: boolean[] = []
      engine.runKernel = function (name, inputs, attrs) {
        if (name === tf.BatchMatMul) flags.push(Boolean(attrs.transposeA) || Boolean(attrs.transposeB))
        return runKernel.call(this, name, inputs, attrs)
      }
      try {
        gradients(CASES[0])
      } finally {
        engine.runKernel = runKernel
      }
      return flags
    }
    // gradients() runs the forward product twice (for the shape of r, then on the tape).
    expect(flagsOfProducts()).toEqual([false, false, false, false])
    uninstallWasmMatMulGradient()
    try {
      expect(flagsOfProducts()).toEqual([false, false, true, true])
    } finally {
      installWasmMatMulGradient()
    }
  })

  it('computes op(p) · op(q) in either orientation', () => {
    // Shapes chosen so that each orientation is the cheaper one at least once.
    for (const [p, q, tp, tq] of [
      [[2, 40], [40, 300], false, false],
      [[2, 40], [300, 40], false, true],
      [[40, 2], [40, 3], true, false],
      [[40, 300], [2, 40], true, true]
    ] as [number[], number[], boolean, boolean][]) {
      const got = tf.tidy(() => {
        const pt = tf.tensor(deterministicValues(sizeOf(p), 4), p)
        const qt = tf.tensor(deterministicValues(sizeOf(q), 5), q)
        return [flagFreeProduct(pt, qt, tp, tq).dataSync() as Float32Array, tf.matMul(pt, qt, tp, tq).dataSync() as Float32Array]
      })
      expectRelativelyClose(got[0], got[1], `p [${p}] q [${q}] ${tp} ${tq}`)
    }
  })
})
