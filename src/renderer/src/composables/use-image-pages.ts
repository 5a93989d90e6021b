import { computed, ref, shallowRef, toValue, watch, type MaybeRefOrGetter } from 'vue'
import type { ImageItem } from '../../../shared/dto'
import type { MethodInput } from '../../../shared/api'
import { studio } from '../api/client'
import { coalesce } from '../util/coalesce'
import { errorMessage } from '../util/format'

type PageInput = MethodInput<'images.page'>
export type ImageFilter = NonNullable<PageInput['filter']>
export type ImageSort = NonNullable<PageInput['sort']>

export interface ImageQuery {
  datasetId: number
  filter: ImageFilter
  sort: ImageSort
  descending: boolean
}

interface CachedPage {
  items: ImageItem[]
  /** The refresh generation that fetched it: older pages are dropped after a refresh. */
  generation: number
}

const PAGE_SIZE = 200
/** Pages kept in memory (~40,000 items); the farthest from the view go first. */
const MAX_PAGES = 200

/**
 * The images of one query, fetched a page at a time as the view asks for index ranges: only
 * visible pages are loaded, loaded pages are cached, and a change of query starts over. Built
 * for 100,000 images: nothing here is proportional to the total.
 */
export function useImagePages(query: MaybeRefOrGetter<ImageQuery | null>) {
  const total = ref(0)
  /** True once the first page of the current query has arrived. */
  const ready = ref(false)
  const loading = ref(false)
  const error = ref<string | null>(null)
  const pages = shallowRef(new Map<number, CachedPage>())
  const inflight = new Map<number, Promise<void>>()
  let queryKey = ''
  let generation = 0
  let lastRange: [number, number] = [0, 0]

  const current = () => toValue(query)

  function touch(): void {
    pages.value = new Map(pages.value)
  }

  async function fetchPage(q: ImageQuery, page: number): Promise<{ items: ImageItem[]; total: number }> {
    const result = await studio().call('images.page', {
      datasetId: q.datasetId,
      filter: q.filter,
      sort: q.sort,
      descending: q.descending,
      offset: page * PAGE_SIZE,
      limit: PAGE_SIZE
    })
    return { items: result.items, total: result.total }
  }

  function ensurePage(page: number): Promise<void> {
    const q = current()
    if (!q || page < 0) return Promise.resolve()
    if (pages.value.has(page)) return Promise.resolve()
    const pending = inflight.get(page)
    if (pending) return pending
    const key = queryKey
    const gen = generation
    loading.value = true
    const promise = fetchPage(q, page)
      .then((result) => {
        if (key !== queryKey) return
        pages.value.set(page, { items: result.items, generation: gen })
        total.value = result.total
        ready.value = true
        error.value = null
        evict()
        touch()
      })
      .catch((e: unknown) => {
        if (key === queryKey) error.value = errorMessage(e)
      })
      .finally(() => {
        inflight.delete(page)
        loading.value = inflight.size > 0
      })
    inflight.set(page, promise)
    return promise
  }

  function evict(): void {
    if (pages.value.size <= MAX_PAGES) return
    const middle = Math.floor((lastRange[0] + lastRange[1]) / 2 / PAGE_SIZE)
    const far = [...pages.value.keys()].sort((a, b) => Math.abs(b - middle) - Math.abs(a - middle))
    for (const page of far.slice(0, pages.value.size - MAX_PAGES)) pages.value.delete(page)
  }

  /** Loads whatever of [start, end] (item indices, inclusive) is not cached yet. */
  function ensureRange(start: number, end: number): Promise<void> {
    lastRange = [Math.max(0, start), Math.max(0, end)]
    const first = Math.floor(Math.max(0, start) / PAGE_SIZE)
    const last = Math.floor(Math.max(0, ready.value ? Math.min(end, total.value - 1) : end) / PAGE_SIZE)
    const waits: Promise<void>[] = []
    for (let page = first; page <= last; page++) waits.push(ensurePage(page))
    return Promise.all(waits).then(() => undefined)
  }

  function item(index: number): ImageItem | undefined {
    const page = pages.value.get(Math.floor(index / PAGE_SIZE))
    return page?.items[index % PAGE_SIZE]
  }

  /** The index of a loaded image, or -1. */
  function indexOf(imageId: number): number {
    for (const [page, cached] of pages.value) {
      const at = cached.items.findIndex((i) => i.id === imageId)
      if (at >= 0) return page * PAGE_SIZE + at
    }
    return -1
  }

  /** The ids of images start..end (inclusive, either order), loading pages as needed. */
  async function idsBetween(a: number, b: number): Promise<number[]> {
    const start = Math.max(0, Math.min(a, b))
    const end = Math.min(Math.max(a, b), total.value - 1)
    await ensureRange(start, end)
    const ids: number[] = []
    for (let i = start; i <= end; i++) {
      const found = item(i)
      if (found) ids.push(found.id)
    }
    return ids
  }

  /**
   * Fetches again the pages around what the view last showed (labels changed, an import
   * added images), swapping them in when they arrive so the grid never blanks.
   */
  const refresh = coalesce(async () => {
    const q = current()
    if (!q) return
    const key = queryKey
    const gen = ++generation
    const lo = Math.floor(lastRange[0] / PAGE_SIZE)
    const hi = Math.floor(lastRange[1] / PAGE_SIZE)
    const wanted = new Set<number>([lo, hi])
    for (let p = lo; p <= hi; p++) wanted.add(p)
    try {
      const results = await Promise.all([...wanted].map(async (page) => [page, await fetchPage(q, page)] as const))
      if (key !== queryKey) return
      const next = new Map<number, CachedPage>()
      for (const [page, cached] of pages.value) if (cached.generation >= gen) next.set(page, cached)
      for (const [page, result] of results) {
        next.set(page, { items: result.items, generation: gen })
        total.value = result.total
      }
      pages.value = next
      ready.value = true
      error.value = null
    } catch (e) {
      if (key === queryKey) error.value = errorMessage(e)
    }
  })

  function reset(): void {
    const q = current()
    queryKey = q ? JSON.stringify(q) : ''
    generation++
    inflight.clear()
    pages.value = new Map()
    total.value = 0
    ready.value = false
    error.value = null
    lastRange = [0, 0]
    if (q) void ensurePage(0)
  }

  watch(() => JSON.stringify(current()), reset, { immediate: true })

  const loadedCount = computed(() => [...pages.value.values()].reduce((n, p) => n + p.items.length, 0))

  return { total, ready, loading, error, pages, item, indexOf, ensureRange, idsBetween, refresh, reset, loadedCount, pageSize: PAGE_SIZE }
}

export type ImagePages = ReturnType<typeof useImagePages>
