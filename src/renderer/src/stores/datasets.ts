import { defineStore } from 'pinia'
import { computed, ref, watch } from 'vue'
import { useStorage } from '@vueuse/core'
import type { DatasetStats, DatasetSummary, SplitCounts } from '../../../shared/dto'
import { studio } from '../api/client'
import { coalesce } from '../util/coalesce'
import { errorMessage } from '../util/format'

/**
 * The datasets, which one the person works on (shared by the Datasets and Label views and kept
 * across reloads), and that dataset's statistics, kept fresh from `labels.changed` events.
 */
export const useDatasetsStore = defineStore('datasets', () => {
  const list = ref<DatasetSummary[]>([])
  const loaded = ref(false)
  const error = ref<string | null>(null)
  /** 0 when none is selected. */
  const selectedId = useStorage('finetune-studio:dataset', 0)
  const stats = ref<DatasetStats | null>(null)
  /** Bumped whenever the selected dataset's labels, splits or images changed. */
  const changes = ref(0)

  const selected = computed(() => list.value.find((d) => d.id === selectedId.value) ?? null)

  const loadList = coalesce(async () => {
    try {
      list.value = await studio().call('datasets.list')
      error.value = null
    } catch (e) {
      error.value = errorMessage(e)
    } finally {
      loaded.value = true
    }
    if (!list.value.some((d) => d.id === selectedId.value)) selectedId.value = list.value[0]?.id ?? 0
  })

  const loadStats = coalesce(async () => {
    const id = selectedId.value
    if (!id) {
      stats.value = null
      return
    }
    try {
      const fresh = await studio().call('datasets.stats', { datasetId: id })
      if (id !== selectedId.value) return
      stats.value = fresh
      const at = list.value.findIndex((d) => d.id === id)
      if (at >= 0) list.value[at] = fresh.dataset
    } catch (e) {
      if (id === selectedId.value) error.value = errorMessage(e)
    }
  })

  watch(selectedId, () => {
    stats.value = null
    void loadStats()
  })

  /** Something about this dataset changed: refresh what shows it. */
  function changed(datasetId: number): void {
    if (datasetId === selectedId.value) {
      changes.value++
      void loadStats()
    }
    void loadList()
  }

  let listening = false
  function listen(): void {
    if (listening) return
    listening = true
    studio().onEvent((event) => {
      if (event.event === 'labels.changed') changed(event.payload.datasetId)
    })
  }

  async function load(): Promise<void> {
    listen()
    await loadList()
    await loadStats()
  }

  function select(id: number): void {
    selectedId.value = id
  }

  async function create(name: string): Promise<DatasetSummary> {
    const made = await studio().call('datasets.create', { name })
    await loadList()
    selectedId.value = made.id
    return made
  }

  async function rename(datasetId: number, name: string): Promise<DatasetSummary> {
    const renamed = await studio().call('datasets.rename', { datasetId, name })
    await loadList()
    return renamed
  }

  async function remove(datasetId: number): Promise<void> {
    await studio().call('datasets.delete', { datasetId })
    if (selectedId.value === datasetId) selectedId.value = 0
    await loadList()
  }

  async function configureSplits(datasetId: number, ratios: SplitCounts, seed: number): Promise<DatasetStats> {
    const fresh = await studio().call('datasets.configureSplits', { datasetId, ratios, seed })
    if (datasetId === selectedId.value) stats.value = fresh
    changes.value++
    await loadList()
    return fresh
  }

  /** A name no dataset has yet: "photos", then "photos (2)", ... */
  function freeName(wanted: string): string {
    const base = wanted.trim().slice(0, 110) || 'My images'
    const taken = new Set(list.value.map((d) => d.name.toLowerCase()))
    if (!taken.has(base.toLowerCase())) return base
    for (let n = 2; ; n++) if (!taken.has(`${base} (${n})`.toLowerCase())) return `${base} (${n})`
  }

  return { list, loaded, error, selectedId, selected, stats, changes, load, loadList, loadStats, changed, select, create, rename, remove, configureSplits, freeName }
})
