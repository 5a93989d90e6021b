import { describe, expect, it } from 'vitest'
import { learningRateAt } from './lr-schedule'

const context = { baseLearningRate: 0.1, stepsPerEpoch: 10, epochs: 5 }

describe('learningRateAt', () => {
  it('warms up linearly over warmupEpochs, then holds a constant rate', () => {
    const schedule = { kind: 'constant' as const, warmupEpochs: 1 }
    expect(learningRateAt(schedule, context, 0)).toBeCloseTo(0.01, 12)
    expect(learningRateAt(schedule, context, 4)).toBeCloseTo(0.05, 12)
    expect(learningRateAt(schedule, context, 9)).toBeCloseTo(0.1, 12)
    expect(learningRateAt(schedule, context, 10)).toBe(0.1)
    expect(learningRateAt(schedule, context, 49)).toBe(0.1)
  })

  it('supports fractional warm-up epochs and no warm-up', () => {
    expect(learningRateAt({ kind: 'constant', warmupEpochs: 0.5 }, context, 0)).toBeCloseTo(0.02, 12)
    expect(learningRateAt({ kind: 'constant', warmupEpochs: 0.5 }, context, 5)).toBe(0.1)
    expect(learningRateAt({ kind: 'constant', warmupEpochs: 0 }, context, 0)).toBe(0.1)
  })

  it('step: multiplies by gamma every stepEpochs epochs, counted from the start', () => {
    const schedule = { kind: 'step' as const, warmupEpochs: 0, stepEpochs: 2, gamma: 0.5 }
    expect(learningRateAt(schedule, context, 0)).toBe(0.1)
    expect(learningRateAt(schedule, context, 19)).toBe(0.1)
    expect(learningRateAt(schedule, context, 20)).toBeCloseTo(0.05, 12)
    expect(learningRateAt(schedule, context, 39)).toBeCloseTo(0.05, 12)
    expect(learningRateAt(schedule, context, 40)).toBeCloseTo(0.025, 12)
    // Warm-up takes precedence while it lasts.
    expect(learningRateAt({ ...schedule, warmupEpochs: 1 }, context, 0)).toBeCloseTo(0.01, 12)
  })

  it('cosine: base right after warm-up, half-way at the middle of the rest, near 0 at the end', () => {
    const schedule = { kind: 'cosine' as const, warmupEpochs: 1 }
    expect(learningRateAt(schedule, context, 9)).toBeCloseTo(0.1, 12)
    expect(learningRateAt(schedule, context, 10)).toBeCloseTo(0.1, 12)
    // 40 steps after warm-up: step 30 is p = 0.5.
    expect(learningRateAt(schedule, context, 30)).toBeCloseTo(0.05, 12)
    expect(learningRateAt(schedule, context, 20)).toBeCloseTo(0.1 * (1 + Math.cos(Math.PI / 4)) / 2, 12)
    const last = learningRateAt(schedule, context, 49)
    expect(last).toBeGreaterThan(0)
    expect(last).toBeLessThan(0.001)
    const noWarmup = { kind: 'cosine' as const, warmupEpochs: 0 }
    expect(learningRateAt(noWarmup, context, 0)).toBe(0.1)
    expect(learningRateAt(noWarmup, context, 25)).toBeCloseTo(0.05, 12)
  })
})
