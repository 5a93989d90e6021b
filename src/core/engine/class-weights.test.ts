import { describe, expect, it } from 'vitest'
import { balancedClassWeights, classWeights } from './class-weights'

describe('class weights', () => {
  it("'balanced' gives n / (k * n_c): rare classes weigh more, each class sums to n / k", () => {
    // 6 of class 0, 3 of class 1, 1 of class 2.
    const labels = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2]
    const w = balancedClassWeights(labels, 3)
    expect(w[0]).toBeCloseTo(10 / 18, 12)
    expect(w[1]).toBeCloseTo(10 / 9, 12)
    expect(w[2]).toBeCloseTo(10 / 3, 12)
    for (const c of [0, 1, 2]) expect(w[c] * labels.filter((l) => l === c).length).toBeCloseTo(10 / 3, 12)
  })

  it('a balanced set gets 1 everywhere; a class without train items gets 0', () => {
    expect(balancedClassWeights([0, 1, 2, 0, 1, 2], 3)).toEqual([1, 1, 1])
    expect(balancedClassWeights([0, 0, 1, 1], 3)).toEqual([1, 1, 0])
    expect(balancedClassWeights([0, 0, 0, 1], 3)).toEqual([4 / 6, 2, 0])
  })

  it("'none' is all ones; a bad label is refused", () => {
    expect(classWeights('none', [0, 0, 0], 2)).toEqual([1, 1])
    expect(() => balancedClassWeights([0, 3], 3)).toThrow(/label 3/)
  })
})
