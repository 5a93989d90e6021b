/** Shared by the gradient tests: reproducible inputs and a relative-error comparison. */
import { expect } from 'vitest'

/** Deterministic values in [-1, 1) (a linear congruential sequence from `seed`). */
export function deterministicValues(size: number, seed: number): Float32Array {
  const out = new Float32Array(size)
  let s = seed >>> 0
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    out[i] = s / 2 ** 31 - 1
  }
  return out
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1)

/** Largest absolute difference, relative to the largest reference value, below `tolerance`. */
export function expectRelativelyClose(actual: Float32Array, expected: Float32Array, label: string, tolerance = 1e-5): void {
  expect(actual.length, label).toBe(expected.length)
  let scale = 0
  let worst = 0
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]))
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]))
  }
  expect(scale, `${label}: reference is all zeros`).toBeGreaterThan(0)
  expect(worst / scale, label).toBeLessThan(tolerance)
}
