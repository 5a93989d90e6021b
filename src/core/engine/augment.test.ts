import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { AUGMENTATION_OFF, augmentBatch, randomBrightness, randomContrast, randomFlip, randomPadCrop, randomRotation } from './augment'

const N = 16
const S = 8

beforeAll(async () => {
  await tf.setBackend('cpu')
})

/** N images of S x S x 3 from a function of (n, y, x, c). */
function images(f: (n: number, y: number, x: number, c: number) => number): tf.Tensor4D {
  const data = new Float32Array(N * S * S * 3)
  for (let n = 0; n < N; n++) for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) data[((n * S + y) * S + x) * 3 + c] = f(n, y, x, c)
  return tf.tensor4d(data, [N, S, S, 3])
}

function pixel(t: tf.Tensor4D, n: number, y: number, x: number, c = 0): number {
  const [, h, w, ch] = t.shape
  return (t.dataSync() as Float32Array)[((n * h + y) * w + x) * ch + c]
}

function imageValues(t: tf.Tensor4D, n: number): Float32Array {
  const per = t.shape[1] * t.shape[2] * t.shape[3]
  return (t.dataSync() as Float32Array).slice(n * per, (n + 1) * per)
}

describe('randomFlip', () => {
  it('mirrors some images exactly left-right and leaves the others untouched', () => {
    // Asymmetric: each pixel's value encodes its column.
    const x = images((_n, _y, col) => col * 10)
    const out = randomFlip(x, 42)
    let flipped = 0
    for (let n = 0; n < N; n++) {
      const first = pixel(out, n, 3, 0)
      if (first === 70) {
        flipped++
        for (let col = 0; col < S; col++) expect(pixel(out, n, 3, col)).toBe((S - 1 - col) * 10)
      } else {
        expect(Array.from(imageValues(out, n))).toEqual(Array.from(imageValues(x, n)))
      }
    }
    expect(flipped).toBeGreaterThan(0)
    expect(flipped).toBeLessThan(N)
    // Same seed, same choice.
    expect(Array.from(randomFlip(x, 42).dataSync())).toEqual(Array.from(out.dataSync()))
    expect(randomFlip(x, 42, 0)).toBe(x)
    tf.dispose([x, out])
  })
})

describe('randomPadCrop', () => {
  it('shifts the content by whole pixels within [-pad, pad], filling the uncovered border with 0', () => {
    // One bright pixel in the middle of each image.
    const x = images((_n, y, col) => (y === 4 && col === 4 ? 200 : 0))
    const out = randomPadCrop(x, 2, 7)
    const shifts = new Set<string>()
    for (let n = 0; n < N; n++) {
      const v = imageValues(out, n)
      const bright = [...v.keys()].filter((i) => v[i] === 200)
      expect(bright).toHaveLength(3) // the pixel's three channels, moved intact
      const p = bright[0] / 3
      const dy = 4 - Math.floor(p / S)
      const dx = 4 - (p % S)
      expect(Math.abs(dy)).toBeLessThanOrEqual(2)
      expect(Math.abs(dx)).toBeLessThanOrEqual(2)
      shifts.add(`${dy},${dx}`)
    }
    expect(shifts.size).toBeGreaterThan(3)
    // A white image gets black borders where it was shifted.
    const white = images(() => 255)
    const cropped = randomPadCrop(white, 2, 7)
    expect(tf.min(cropped).dataSync()[0]).toBe(0)
    expect(randomPadCrop(x, 0, 7)).toBe(x)
    tf.dispose([x, out, white, cropped])
  })
})

describe('randomRotation', () => {
  it('rotates about the centre: a horizontal bar tilts, a uniform image stays uniform', () => {
    const size = 33
    const bar = tf.tidy(() => {
      const data = new Float32Array(N * size * size * 3)
      for (let n = 0; n < N; n++) for (let xcol = 4; xcol < size - 4; xcol++) for (let c = 0; c < 3; c++) data[((n * size + 16) * size + xcol) * 3 + c] = 255
      return tf.tensor4d(data, [N, size, size, 3])
    })
    const out = randomRotation(bar, 30, 3)
    let tilted = 0
    for (let n = 0; n < N; n++) {
      expect(pixel(out, n, 16, 16)).toBeCloseTo(255, 3) // the centre does not move
      // A tilted bar puts light away from row 16, above on one side and below on the other.
      let total = 0
      let away = 0
      for (let y = 0; y < size; y++) {
        for (let xcol = 0; xcol < size; xcol++) {
          const v = pixel(out, n, y, xcol)
          total += v
          if (Math.abs(y - 16) >= 2) away += v
        }
      }
      if (away > 0.2 * total) tilted++
    }
    expect(tilted).toBeGreaterThan(N / 4)
    const grey = images(() => 90)
    const rotatedGrey = randomRotation(grey, 30, 3)
    expect(tf.max(tf.abs(tf.sub(rotatedGrey, 90))).dataSync()[0]).toBeLessThan(1e-3)
    expect(randomRotation(bar, 0, 3)).toBe(bar)
    tf.dispose([bar, out, grey, rotatedGrey])
  })
})

describe('randomBrightness and randomContrast', () => {
  it('brightness scales each image by its own factor in [1 - a, 1 + a] and clips at 255', () => {
    const x = images(() => 100)
    const out = randomBrightness(x, 0.4, 11)
    const means = Array.from({ length: N }, (_, n) => imageValues(out, n).reduce((a, b) => a + b, 0) / (S * S * 3))
    for (const m of means) {
      expect(m).toBeGreaterThanOrEqual(60)
      expect(m).toBeLessThanOrEqual(140)
    }
    expect(Math.max(...means) - Math.min(...means)).toBeGreaterThan(10)
    const bright = images(() => 250)
    expect(tf.max(randomBrightness(bright, 0.4, 11)).dataSync()[0]).toBe(255)
    expect(randomBrightness(x, 0, 11)).toBe(x)
    tf.dispose([x, out, bright])
  })

  it("contrast keeps each image's mean and scales its spread by a factor in [1 - c, 1 + c]", () => {
    const x = images((_n, y, col) => 100 + ((y + col) % 2 === 0 ? 20 : -20))
    const out = randomContrast(x, 0.5, 5)
    const spreads: number[] = []
    for (let n = 0; n < N; n++) {
      const v = imageValues(out, n)
      const mean = v.reduce((a, b) => a + b, 0) / v.length
      expect(mean).toBeCloseTo(100, 3)
      const spread = Math.max(...v) - mean
      expect(spread).toBeGreaterThanOrEqual(10 - 1e-3)
      expect(spread).toBeLessThanOrEqual(30 + 1e-3)
      spreads.push(spread)
    }
    expect(Math.max(...spreads) - Math.min(...spreads)).toBeGreaterThan(2)
    expect(randomContrast(x, 0, 5)).toBe(x)
    tf.dispose([x, out])
  })
})

describe('augmentBatch', () => {
  it('is the identity when everything is off, and deterministic in its seed otherwise', () => {
    const x = images((n, y, col, c) => (n * 7 + y * 13 + col * 3 + c * 50) % 256)
    expect(augmentBatch(x, AUGMENTATION_OFF, 1)).toBe(x)
    const spec = { flip: true, crop: 1, rotationDegrees: 10, brightness: 0.2, contrast: 0.2 }
    const a = augmentBatch(x, spec, 1)
    const b = augmentBatch(x, spec, 1)
    const c = augmentBatch(x, spec, 2)
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()))
    expect(Array.from(a.dataSync())).not.toEqual(Array.from(c.dataSync()))
    expect(a.shape).toEqual(x.shape)
    expect(tf.min(a).dataSync()[0]).toBeGreaterThanOrEqual(0)
    expect(tf.max(a).dataSync()[0]).toBeLessThanOrEqual(255)
    tf.dispose([x, a, b, c])
  })
})
