import type { VggWeights } from '../weights/vgg-weights'
import { planVgg, type VggOptions } from './vgg'

/**
 * Fills `out` with uniform values in [-limit, limit) from a xorshift32 stream: the random bits
 * become the mantissa of a float in [1, 2), then one multiply-add (VGG16 has 138M values).
 */
function fillUniform(out: Float32Array, limit: number, state: { x: number }): void {
  const bits = new Int32Array(out.buffer, out.byteOffset, out.length)
  let x = state.x | 0
  for (let i = 0; i < bits.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    bits[i] = 0x3f800000 | (x >>> 9)
  }
  state.x = x
  const scale = 2 * limit
  const shift = -3 * limit
  for (let i = 0; i < out.length; i++) out[i] = out[i] * scale + shift
}

/**
 * Random VGG weights with the shapes `planVgg` gives for these options (He-uniform kernels,
 * small random biases), for tests and benchmarks: no real weights can be downloaded here.
 */
export function randomVggWeights(
  options: Pick<VggOptions, 'depth' | 'inputSize' | 'numClasses' | 'fcWidth'>,
  seed = 1
): VggWeights {
  const state = { x: seed | 0 || 1 }
  const weights: VggWeights = new Map()
  for (const [name, shape] of planVgg(options).kernelShapes) {
    const out = shape[shape.length - 1]
    const size = shape.reduce((a, b) => a * b, 1)
    const limit = Math.sqrt(6 / (size / out))
    const kernel = new Float32Array(size)
    fillUniform(kernel, limit, state)
    const bias = new Float32Array(out)
    fillUniform(bias, 0.1, state)
    weights.set(name, { kernel, kernelShape: [...shape], bias })
  }
  return weights
}
