/**
 * Train / validation / test assignment: stratified by class, seeded, and stable.
 *
 * Stable means an image keeps its split for life: assignSplits only ever assigns images that
 * have none, so importing more images (or re-running the assignment) never moves an existing
 * one and never leaks a former test image into training.
 */
import { createHash } from 'node:crypto'
import { SPLITS, type Split } from '../../shared/dto'

export { SPLITS, type Split }

/** Relative weights; they need not sum to 1 (0.8/0.1/0.1 and 8/1/1 are the same). */
export interface SplitRatios {
  train: number
  validation: number
  test: number
}

export interface SplitItem<Id> {
  id: Id
  /** The image's class; null while unlabelled (such an image gets no split). */
  classKey: string | null
  /** Content hash: seeds the image's place in the order and keeps duplicates together. */
  hash: string
}

export interface AssignSplitsInput<Id> {
  /** Splits already assigned; they are never changed. Entries for ids not in `items` are ignored. */
  existing: ReadonlyMap<Id, Split>
  /** Every image of the dataset, assigned or not. */
  items: readonly SplitItem<Id>[]
  ratios: SplitRatios
  seed: number | string
}

/**
 * Assigns a split to every labelled image that has none and returns those new assignments
 * only (existing ones are not repeated).
 *
 * Per class, the class's unassigned images are taken in a seeded order (a hash of seed,
 * content hash and id, so it does not depend on the order of `items`), and each goes to the
 * split furthest below its target count for the class's new size. Starting from an empty or a
 * previously balanced class (and barring exact duplicates, below), every split then stays
 * within one image of its target share, at every size the class grows through. If the ratios
 * change later, new images go where the shortfall is largest, so the splits converge to the
 * new ratios without moving anything.
 *
 * Unlabelled images (classKey null) are left out: they get a split once labelled, which keeps
 * each split stratified by class.
 *
 * Exact duplicates (same hash) go to the split of the first copy already assigned, whatever
 * its class, so one picture cannot sit in both training and test.
 */
export function assignSplits<Id>(input: AssignSplitsInput<Id>): Map<Id, Split> {
  const targets = normalizeRatios(input.ratios)
  const seed = String(input.seed)

  const byClass = new Map<string, { counts: Record<Split, number>; pending: { item: SplitItem<Id>; order: string }[] }>()
  const splitOfHash = new Map<string, Split>()
  for (const item of input.items) {
    if (item.classKey === null) continue
    let group = byClass.get(item.classKey)
    if (!group) {
      group = { counts: { train: 0, validation: 0, test: 0 }, pending: [] }
      byClass.set(item.classKey, group)
    }
    const split = input.existing.get(item.id)
    if (split !== undefined) {
      group.counts[split]++
      if (!splitOfHash.has(item.hash)) splitOfHash.set(item.hash, split)
    } else {
      group.pending.push({ item, order: orderKey(seed, item) })
    }
  }

  const assigned = new Map<Id, Split>()
  for (const classKey of [...byClass.keys()].sort(compare)) {
    const { counts, pending } = byClass.get(classKey)!
    pending.sort((a, b) => compare(a.order, b.order))
    let total = counts.train + counts.validation + counts.test
    for (const { item } of pending) {
      total++
      const split = splitOfHash.get(item.hash) ?? furthestBelowTarget(counts, targets, total)
      counts[split]++
      splitOfHash.set(item.hash, split)
      assigned.set(item.id, split)
    }
  }
  return assigned
}

/** Per-class counts of each split, for reports and tests. Images without a split are not counted. */
export function countSplits<Id>(items: readonly SplitItem<Id>[], ...assignments: ReadonlyMap<Id, Split>[]): Map<string, Record<Split, number>> {
  const counts = new Map<string, Record<Split, number>>()
  for (const item of items) {
    if (item.classKey === null) continue
    const split = assignments.map((a) => a.get(item.id)).find((s) => s !== undefined)
    if (split === undefined) continue
    let c = counts.get(item.classKey)
    if (!c) {
      c = { train: 0, validation: 0, test: 0 }
      counts.set(item.classKey, c)
    }
    c[split]++
  }
  return counts
}

export function normalizeRatios(ratios: SplitRatios): Record<Split, number> {
  for (const split of SPLITS) {
    const r = ratios[split]
    if (!Number.isFinite(r) || r < 0) throw new RangeError(`split ratio for ${split} must be a finite number ≥ 0, got ${r}`)
  }
  const sum = ratios.train + ratios.validation + ratios.test
  if (sum <= 0) throw new RangeError('split ratios must not all be 0')
  return { train: ratios.train / sum, validation: ratios.validation / sum, test: ratios.test / sum }
}

function furthestBelowTarget(counts: Record<Split, number>, targets: Record<Split, number>, total: number): Split {
  let best: Split = 'train'
  let bestShortfall = -Infinity
  for (const split of SPLITS) {
    if (targets[split] === 0) continue
    const shortfall = targets[split] * total - counts[split]
    if (shortfall > bestShortfall + 1e-9) {
      best = split
      bestShortfall = shortfall
    }
  }
  return best
}

function orderKey(seed: string, item: SplitItem<unknown>): string {
  return createHash('sha256').update(`${seed}\u0000${item.hash}\u0000${String(item.id)}`).digest('hex')
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
