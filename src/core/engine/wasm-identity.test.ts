import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as tf from '@tensorflow/tfjs'
import '@tensorflow/tfjs-backend-wasm'
import { installSharingIdentity, uninstallSharingIdentity } from './wasm-identity'

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true)
})

afterAll(() => {
  uninstallSharingIdentity()
})

const buffers = (): number => tf.engine().backend.numDataIds()

describe('sharing Identity on wasm', () => {
  it('the stock kernel copies a clone (why this module exists); ours shares it', () => {
    const x = tf.tensor1d([1, 2, 3])
    const before = buffers()
    const copied = tf.clone(x)
    expect(buffers()).toBe(before + 1)
    installSharingIdentity()
    const shared = tf.clone(x)
    expect(buffers()).toBe(before + 1)
    tf.dispose([copied, shared, x])
  })

  it('a clone keeps its values after the original is disposed, and frees them with the last reference', () => {
    installSharingIdentity()
    const before = buffers()
    const x = tf.tensor1d([4, 5, 6])
    const y = tf.clone(x)
    x.dispose()
    expect(Array.from(y.dataSync())).toEqual([4, 5, 6])
    y.dispose()
    expect(buffers()).toBe(before)
  })

  it('a clone of a variable keeps the old values when the variable is assigned', () => {
    installSharingIdentity()
    const v = tf.variable(tf.tensor1d([1, 1]))
    const saved = tf.clone(v)
    v.assign(tf.tensor1d([7, 8]))
    expect(Array.from(saved.dataSync())).toEqual([1, 1])
    expect(Array.from(v.dataSync())).toEqual([7, 8])
    tf.dispose([saved, v])
  })

  it('gradients that save their inputs stay right', () => {
    installSharingIdentity()
    const x = tf.tensor1d([-1, 2, 3])
    const [dx] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(tf.relu(a), a)))([x])
    // d/da (relu(a) * a) = 2a where a > 0, else 0.
    expect(Array.from(dx.dataSync())).toEqual([0, 4, 6])
    tf.dispose([x, dx])
  })
})
