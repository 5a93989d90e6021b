/**
 * Per-class loss weights. 'balanced' follows scikit-learn: `n / (k * n_c)` for a class with
 * `n_c` of the `n` training items, so every class contributes the same total weight and a
 * balanced set gets weight 1 everywhere. k counts the classes that have training items; a class
 * with none gets 0 (it never appears in a training batch, so the value only matters for
 * reporting).
 */
export function classWeights(kind: 'none' | 'balanced', trainLabels: readonly number[], numClasses: number): number[] {
  if (kind === 'none') return new Array<number>(numClasses).fill(1)
  return balancedClassWeights(trainLabels, numClasses)
}

export function balancedClassWeights(trainLabels: readonly number[], numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0)
  for (const label of trainLabels) {
    if (!Number.isInteger(label) || label < 0 || label >= numClasses) throw new RangeError(`label ${label} is not a class index (0..${numClasses - 1})`)
    counts[label]++
  }
  const n = trainLabels.length
  const present = counts.filter((c) => c > 0).length
  return counts.map((c) => (c === 0 ? 0 : n / (present * c)))
}
