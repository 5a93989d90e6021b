import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as tf from '@tensorflow/tfjs'
import '@tensorflow/tfjs-backend-wasm'
import { WeightNormConv2D } from '../model/weight-norm'
import { installWasmConvGradients, uninstallWasmConvGradients } from './conv-grad'
import { applyForTraining, reluConv2d } from './relu-conv'
import { installSharingIdentity, uninstallSharingIdentity } from './wasm-identity'
import { deterministicValues, expectRelativelyClose, sizeOf } from '../../../test/generators/gradient-checks'

interface Case {
  name: string
  x: [number, number, number, number]
  w: [number, number, number, number]
  strides: [number, number]
  pad: 'same' | 'valid'
}

const CASES: Case[] = [
  { name: 'VGG-like 3x3 same', x: [2, 8, 8, 4], w: [3, 3, 4, 6], strides: [1, 1], pad: 'same' },
  { name: 'valid', x: [2, 7, 6, 3], w: [3, 3, 3, 5], strides: [1, 1], pad: 'valid' },
  { name: 'stride 2, same', x: [1, 9, 8, 2], w: [3, 3, 2, 4], strides: [2, 2], pad: 'same' }
]

type Outcome = { y: Float32Array; dx: Float32Array; dw: Float32Array; db: Float32Array }

/** y and the gradients of sum(y * r) for x, W and b, with `op` the conv + bias + relu. */
function run(c: Case, op: (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) => tf.Tensor): Outcome {
  return tf.tidy(() => {
    const x = tf.tensor4d(deterministicValues(sizeOf(c.x), 1), c.x)
    // Biases around 0 so that the relu cuts some outputs and passes others.
    const w = tf.tensor4d(deterministicValues(sizeOf(c.w), 2), c.w)
    const b = tf.tensor1d(deterministicValues(c.w[3], 3))
    const y = op(x, w, b)
    const r = tf.tensor(deterministicValues(y.size, 4), y.shape)
    const [dx, dw, db] = tf.grads((a: tf.Tensor, k: tf.Tensor, bias: tf.Tensor) => tf.sum(tf.mul(op(a as tf.Tensor4D, k as tf.Tensor4D, bias as tf.Tensor1D), r)))([x, w, b])
    return { y: y.dataSync() as Float32Array, dx: dx.dataSync() as Float32Array, dw: dw.dataSync() as Float32Array, db: db.dataSync() as Float32Array }
  })
}

const unfused = (c: Case) => (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) => tf.relu(tf.add(tf.conv2d(x, w, c.strides, c.pad), b))
const fused = (c: Case) => (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) => reluConv2d(x, w, b, c.strides, c.pad)

function expectSame(got: Outcome, want: Outcome, label: string): void {
  expectRelativelyClose(got.y, want.y, `${label} y`)
  expectRelativelyClose(got.dx, want.dx, `${label} dx`)
  expectRelativelyClose(got.dw, want.dw, `${label} dW`)
  expectRelativelyClose(got.db, want.db, `${label} db`)
}

const reference = new Map<string, Outcome>()

beforeAll(async () => {
  await tf.setBackend('cpu')
  for (const c of CASES) reference.set(c.name, run(c, unfused(c)))
  expect(await tf.setBackend('wasm')).toBe(true)
  installWasmConvGradients()
  installSharingIdentity()
})

afterAll(() => {
  uninstallSharingIdentity()
  uninstallWasmConvGradients()
})

describe('reluConv2d', () => {
  it.each(CASES)('computes relu(conv + b) and its gradients like the op-by-op version, on cpu: $name', async (c) => {
    await tf.setBackend('cpu')
    try {
      expectSame(run(c, fused(c)), reference.get(c.name)!, c.name)
    } finally {
      await tf.setBackend('wasm')
    }
  })

  it.each(CASES)('and on wasm: $name', (c) => {
    expectSame(run(c, fused(c)), reference.get(c.name)!, c.name)
  })

  it('keeps one tensor per layer for the backward pass instead of three', () => {
    const c = CASES[0]
    const layers = 4
    /** Distinct data buffers alive when the backward pass starts, through `layers` conv layers. */
    const buffersAtBackward = (op: (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) => tf.Tensor): number => {
      let count = -1
      const probe = tf.customGrad(((loss: tf.Tensor) => ({
        value: tf.mul(loss, 1),
        gradFunc: (dy: tf.Tensor) => {
          count = tf.engine().backend.numDataIds()
          return dy
        }
      })) as unknown as Parameters<typeof tf.customGrad>[0])
      const x = tf.tensor4d(deterministicValues(sizeOf(c.x), 1), c.x)
      const w = tf.tidy(() => tf.variable(tf.tensor4d(deterministicValues(3 * 3 * 4 * 4, 2), [3, 3, 4, 4])))
      const b = tf.tidy(() => tf.variable(tf.tensor1d(deterministicValues(4, 3))))
      const { value, grads } = tf.variableGrads(() => {
        let h: tf.Tensor = x
        for (let i = 0; i < layers; i++) h = op(h as tf.Tensor4D, w, b)
        return probe(tf.sum(h)) as tf.Scalar
      }, [w, b])
      tf.dispose([value, ...Object.values(grads), x, w, b])
      return count
    }
    const before = tf.memory().numTensors
    const unfusedCount = buffersAtBackward(unfused(c))
    const fusedCount = buffersAtBackward(fused(c))
    expect(tf.memory().numTensors).toBe(before)
    expect(unfusedCount - fusedCount).toBeGreaterThanOrEqual(2 * layers)
  })

  it('computes no input gradient where the tape does not need one (the image, a frozen prefix)', async () => {
    const c = CASES[0]
    const convsInBackward = async (xTrains: boolean): Promise<number> => {
      const x = tf.variable(tf.tensor4d(deterministicValues(sizeOf(c.x), 1), c.x))
      const w = tf.variable(tf.tensor4d(deterministicValues(sizeOf(c.w), 2), c.w))
      const b = tf.variable(tf.tensor1d(deterministicValues(c.w[3], 3)))
      const profile = await tf.profile(() => {
        const { value, grads } = tf.variableGrads(() => tf.sum(reluConv2d(x, w, b, c.strides, c.pad)) as tf.Scalar, xTrains ? [x, w, b] : [w, b])
        tf.dispose([value, ...Object.values(grads)])
      })
      tf.dispose([x, w, b])
      return profile.kernels.filter((k) => k.name === 'Conv2D').length
    }
    // The forward pass is one FusedConv2D; the filter gradient one Conv2D, the input gradient another.
    expect(await convsInBackward(true)).toBe(2)
    expect(await convsInBackward(false)).toBe(1)
  })
})

describe('applyForTraining', () => {
  const x = (): tf.Tensor4D => tf.tensor4d(deterministicValues(2 * 6 * 6 * 3, 5), [2, 6, 6, 3])

  function outputAndGradients(layer: tf.layers.Layer, apply: (input: tf.Tensor) => tf.Tensor): Float32Array[] {
    return tf.tidy(() => {
      const input = x()
      const variables = layer.trainableWeights.map((v) => v.read() as tf.Variable)
      const r = tf.tensor(deterministicValues(2 * 6 * 6 * 4, 6), [2, 6, 6, 4])
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(apply(input), r)) as tf.Scalar, variables)
      return [value, ...variables.map((v) => grads[v.name])].map((t) => t.dataSync() as Float32Array)
    })
  }

  it.each([
    ['a tf.layers Conv2D', () => tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', biasInitializer: 'randomNormal' })],
    ['a WeightNormConv2D', () => new WeightNormConv2D({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' })]
  ] as [string, () => tf.layers.Layer][])('trains %s as the layer itself would, through reluConv2d', async (_name, make) => {
    const layer = make()
    layer.apply(x())
    if (layer instanceof WeightNormConv2D) {
      // Biases that are not all zero, so the bias gradient path is exercised with a real cut.
      layer.biasParam?.write(tf.tensor1d([0.1, -0.2, 0.05, 0.3]))
    }
    const want = outputAndGradients(layer, (input) => layer.apply(input, { training: true }) as tf.Tensor)
    let got: Float32Array[] = []
    const profile = await tf.profile(() => {
      got = outputAndGradients(layer, (input) => applyForTraining(layer, input))
    })
    // On the tape, the layer itself runs an unfused conv, bias add and relu.
    expect(profile.kernels.map((k) => k.name)).toContain('FusedConv2D')
    expect(got).toHaveLength(want.length)
    got.forEach((g, i) => expectRelativelyClose(g, want[i], `tensor ${i}`))
    layer.dispose()
  })
})
