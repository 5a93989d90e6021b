import { describe, expect, it } from 'vitest'
import { seededRandom } from '../seeded-random'
import { assignSplits, countSplits, normalizeRatios, SPLITS, type Split, type SplitItem, type SplitRatios } from './split'

const ratios: SplitRatios = { train: 0.7, validation: 0.15, test: 0.15 }

/** `n` items of class `classKey` with distinct ids and hashes. */
function items(classKey: string | null, n: number, from = 0): SplitItem<string>[] {
  return Array.from({ length: n }, (_, i) => ({ id: `${classKey}-${from + i}`, classKey, hash: `h-${classKey}-${from + i}` }))
}

function shuffled<T>(array: readonly T[], seed: number): T[] {
  const random = seededRandom(seed)
  const copy = [...array]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[copy[i], copy[j]] = [copy[j], copy[i]]
  }
  return copy
}

/** Every class's count of every split is within one image of its share. */
function expectStratified(all: readonly SplitItem<string>[], r: SplitRatios, ...assignments: ReadonlyMap<string, Split>[]): void {
  const targets = normalizeRatios(r)
  for (const [classKey, counts] of countSplits(all, ...assignments)) {
    const n = counts.train + counts.validation + counts.test
    for (const split of SPLITS) {
      expect(Math.abs(counts[split] - targets[split] * n), `${classKey} ${split}: ${counts[split]} of ${n}`).toBeLessThanOrEqual(1)
    }
  }
}

describe('assignSplits', () => {
  const dataset = [...items('cat', 100), ...items('dog', 37), ...items('eel', 7), ...items('fox', 1)]

  it('assigns every labelled image, stratified: each class within one image of each target', () => {
    const assigned = assignSplits({ existing: new Map(), items: dataset, ratios, seed: 42 })
    expect(assigned.size).toBe(dataset.length)
    expectStratified(dataset, ratios, assigned)
    expect(countSplits(dataset, assigned).get('cat')).toEqual({ train: 70, validation: 15, test: 15 })
  })

  it('leaves unlabelled images without a split', () => {
    const unlabelled = items(null, 10)
    const assigned = assignSplits({ existing: new Map(), items: [...dataset, ...unlabelled], ratios, seed: 42 })
    expect(assigned.size).toBe(dataset.length)
    for (const item of unlabelled) expect(assigned.has(item.id)).toBe(false)
  })

  it('is stable: adding 50% more images moves no existing one and returns only the new ones', () => {
    const first = assignSplits({ existing: new Map(), items: dataset, ratios, seed: 7 })
    const more = [...items('cat', 50, 100), ...items('dog', 19, 37), ...items('eel', 3, 7), ...items('fox', 1, 1), ...items('gnu', 3)]
    const grown = [...dataset, ...more]
    const second = assignSplits({ existing: first, items: grown, ratios, seed: 7 })

    expect([...second.keys()].sort()).toEqual(more.map((i) => i.id).sort())
    const merged = new Map([...first, ...second])
    for (const [id, split] of first) expect(merged.get(id)).toBe(split)
    expectStratified(grown, ratios, first, second)
    // Nothing left to do: a re-run assigns nothing.
    expect(assignSplits({ existing: merged, items: grown, ratios, seed: 7 }).size).toBe(0)
  })

  it('stays stratified when a class grows one image at a time', () => {
    let existing = new Map<string, Split>()
    const all: SplitItem<string>[] = []
    for (let i = 0; i < 60; i++) {
      all.push(...items('cat', 1, i))
      const added = assignSplits({ existing, items: all, ratios, seed: 3 })
      expect(added.size).toBe(1)
      existing = new Map([...existing, ...added])
      expectStratified(all, ratios, existing)
    }
  })

  it('keeps each class within one image of target for many sizes and ratios', () => {
    const random = seededRandom(11)
    for (let trial = 0; trial < 200; trial++) {
      const r = { train: random(), validation: random(), test: random() * (trial % 5 === 0 ? 0 : 1) }
      const all = items('c', 1 + Math.floor(random() * 80))
      const cut = Math.floor(random() * all.length)
      const first = assignSplits({ existing: new Map(), items: all.slice(0, cut), ratios: r, seed: trial })
      const second = assignSplits({ existing: first, items: all, ratios: r, seed: trial })
      expectStratified(all, r, first, second)
      if (r.test === 0) expect([...first.values(), ...second.values()]).not.toContain('test')
    }
  })

  it('does not depend on the order of the items', () => {
    const a = assignSplits({ existing: new Map(), items: dataset, ratios, seed: 5 })
    const b = assignSplits({ existing: new Map(), items: shuffled(dataset, 99), ratios, seed: 5 })
    expect(new Map([...b].sort())).toEqual(new Map([...a].sort()))
  })

  it('depends on the seed', () => {
    const a = assignSplits({ existing: new Map(), items: dataset, ratios, seed: 1 })
    const b = assignSplits({ existing: new Map(), items: dataset, ratios, seed: 2 })
    const moved = dataset.filter((item) => a.get(item.id) !== b.get(item.id))
    expect(moved.length).toBeGreaterThan(10)
    expectStratified(dataset, ratios, b)
  })

  it('treats ratios as weights', () => {
    const a = assignSplits({ existing: new Map(), items: dataset, ratios: { train: 0.8, validation: 0.1, test: 0.1 }, seed: 4 })
    const b = assignSplits({ existing: new Map(), items: dataset, ratios: { train: 8, validation: 1, test: 1 }, seed: 4 })
    expect(b).toEqual(a)
  })

  it('puts an exact duplicate in the split of its first copy, whatever its class', () => {
    const first = assignSplits({ existing: new Map(), items: dataset, ratios, seed: 8 })
    const testItem = dataset.find((item) => first.get(item.id) === 'test')!
    const copy = { id: 'copy', classKey: 'dog', hash: testItem.hash }
    const second = assignSplits({ existing: first, items: [...dataset, copy], ratios, seed: 8 })
    expect(second).toEqual(new Map([['copy', 'test']]))
  })

  it('rejects ratios that make no sense', () => {
    expect(() => assignSplits({ existing: new Map(), items: dataset, ratios: { train: 0, validation: 0, test: 0 }, seed: 1 })).toThrow(/must not all be 0/)
    expect(() => assignSplits({ existing: new Map(), items: dataset, ratios: { train: 1, validation: -1, test: 0 }, seed: 1 })).toThrow(/validation/)
  })
})
