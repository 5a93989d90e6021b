import { describe, expect, it } from 'vitest'
import { floatsDiffer } from '../../../test/generators/vgg-weight-files'
import { chwToHwc, hwcFc1ToTorch, hwioToOihw, inOutToOutIn, oihwToHwio, outInToInOut, torchFc1ToHwc } from './layouts'

function iota(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => i)
}

function random(n: number, seed = 3): Float32Array {
  let s = seed
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648
    return s / 2147483648 - 0.5
  })
}

describe('oihwToHwio / hwioToOihw', () => {
  // Sizes not multiples of the 32-wide tiles, to exercise the tile edges.
  const [O, I, H, W] = [37, 35, 3, 2]

  it('is transpose(2,3,1,0): hwio[h][w][i][o] == oihw[o][i][h][w]', () => {
    const src = iota(O * I * H * W)
    const dst = oihwToHwio(src, [O, I, H, W])
    let wrong = 0
    for (let o = 0; o < O; o++)
      for (let i = 0; i < I; i++)
        for (let h = 0; h < H; h++)
          for (let w = 0; w < W; w++) if (dst[((h * W + w) * I + i) * O + o] !== src[((o * I + i) * H + h) * W + w]) wrong++
    expect(wrong).toBe(0)
    expect(dst[((1 * W + 0) * I + 2) * O + 3]).toBe(((3 * I + 2) * H + 1) * W + 0)
  })

  it('round-trips exactly', () => {
    const src = random(O * I * H * W)
    expect(floatsDiffer(hwioToOihw(oihwToHwio(src, [O, I, H, W]), [H, W, I, O]), src)).toBeUndefined()
  })

  it('computes the same convolution output as the torch kernel', () => {
    // One output pixel of a 3x3 valid cross-correlation, CHW input vs HWC input.
    const [co, ci] = [5, 4]
    const x = random(ci * 3 * 3, 11)
    const kOihw = random(co * ci * 9, 12)
    const kHwio = oihwToHwio(kOihw, [co, ci, 3, 3])
    const xHwc = chwToHwc(x, ci, 3, 3)
    for (let o = 0; o < co; o++) {
      let torch = 0
      let tfStyle = 0
      for (let i = 0; i < ci; i++)
        for (let y = 0; y < 3; y++)
          for (let xx = 0; xx < 3; xx++) {
            torch += kOihw[((o * ci + i) * 3 + y) * 3 + xx] * x[(i * 3 + y) * 3 + xx]
            tfStyle += kHwio[((y * 3 + xx) * ci + i) * co + o] * xHwc[(y * 3 + xx) * ci + i]
          }
      expect(tfStyle).toBeCloseTo(torch, 12)
    }
  })

  it('rejects an array that does not match the shape', () => {
    expect(() => oihwToHwio(new Float32Array(5), [2, 1, 1, 2])).toThrow(/5 values, shape \[2,1,1,2\] needs 4/)
  })
})

describe('dense [out,in] <-> [in,out]', () => {
  it('transposes', () => {
    const src = iota(70 * 33)
    const dst = outInToInOut(src, [70, 33])
    let wrong = 0
    for (let o = 0; o < 70; o++) for (let i = 0; i < 33; i++) if (dst[i * 70 + o] !== src[o * 33 + i]) wrong++
    expect(wrong).toBe(0)
    expect(floatsDiffer(inOutToOutIn(dst, [33, 70]), src)).toBeUndefined()
  })
})

describe('first FC layer CHW <-> HWC', () => {
  const g = { outputs: 40, channels: 6, height: 7, width: 7 }
  const K = g.channels * g.height * g.width

  it('canonical[(h*W+w)*C + c][o] == torch[o][c*H*W + h*W + w]', () => {
    const torch = random(g.outputs * K)
    const canonical = torchFc1ToHwc(torch, g)
    const { channels: C, height: H, width: W, outputs: O } = g
    let wrong = 0
    for (let o = 0; o < O; o++)
      for (let c = 0; c < C; c++)
        for (let h = 0; h < H; h++)
          for (let w = 0; w < W; w++) if (canonical[((h * W + w) * C + c) * O + o] !== torch[o * K + c * H * W + h * W + w]) wrong++
    expect(wrong).toBe(0)
    // h=2, w=5, c=4, o=17
    expect(canonical[((2 * W + 5) * C + 4) * O + 17]).toBe(torch[17 * K + 4 * H * W + 2 * W + 5])
    expect(floatsDiffer(hwcFc1ToTorch(canonical, g), torch)).toBeUndefined()
  })

  it('gives the same activations on an HWC-flattened map as torch on the CHW-flattened map', () => {
    const torch = random(g.outputs * K, 5)
    const canonical = torchFc1ToHwc(torch, g)
    const mapChw = random(K, 9)
    const mapHwc = chwToHwc(mapChw, g.channels, g.height, g.width)
    for (let o = 0; o < g.outputs; o++) {
      let yTorch = 0
      let yTf = 0
      for (let k = 0; k < K; k++) {
        yTorch += torch[o * K + k] * mapChw[k]
        yTf += mapHwc[k] * canonical[k * g.outputs + o]
      }
      expect(yTf).toBeCloseTo(yTorch, 10)
    }
  })

  it('is the same permutation as OIHW -> HWIO of timm fc1 [out,C,H,W]', () => {
    const torch = random(g.outputs * K, 6)
    expect(floatsDiffer(torchFc1ToHwc(torch, g), oihwToHwio(torch, [g.outputs, g.channels, g.height, g.width]))).toBeUndefined()
  })
})
