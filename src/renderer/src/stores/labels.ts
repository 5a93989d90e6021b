import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { ClassSummary, LabelActionResult } from '../../../shared/dto'
import { studio } from '../api/client'
import { useDatasetsStore } from './datasets'

/**
 * Labelling and class edits for one dataset. Every change is one undoable action on the
 * backend; this store remembers which images each of its own actions touched, so that undo
 * can bring the view back to them.
 */
export const useLabelsStore = defineStore('labels', () => {
  const datasets = useDatasetsStore()
  const touched = new Map<number, number[]>()
  /** The last action's description ("Label 3 images as "cat"", "Undo: ..."). */
  const lastAction = ref<string | null>(null)

  async function after(datasetId: number, result: LabelActionResult): Promise<LabelActionResult> {
    lastAction.value = result.description
    if (result.changed) datasets.changed(datasetId)
    await datasets.loadStats()
    return result
  }

  async function setLabels(datasetId: number, imageIds: number[], classId: number | null): Promise<LabelActionResult> {
    const result = await studio().call('labels.set', { datasetId, imageIds, classId })
    if (result.actionId !== null) touched.set(result.actionId, imageIds)
    return after(datasetId, result)
  }

  /** Undo or redo; `imageIds` are the images the action touched, when this session made it. */
  async function undo(datasetId: number): Promise<LabelActionResult & { imageIds: number[] }> {
    const result = await after(datasetId, await studio().call('labels.undo', { datasetId }))
    return { ...result, imageIds: (result.actionId !== null && touched.get(result.actionId)) || [] }
  }

  async function redo(datasetId: number): Promise<LabelActionResult & { imageIds: number[] }> {
    const result = await after(datasetId, await studio().call('labels.redo', { datasetId }))
    return { ...result, imageIds: (result.actionId !== null && touched.get(result.actionId)) || [] }
  }

  async function createClass(datasetId: number, name: string): Promise<ClassSummary> {
    const made = await studio().call('classes.create', { datasetId, name })
    datasets.changed(datasetId)
    await datasets.loadStats()
    return made
  }

  async function renameClass(datasetId: number, classId: number, name: string): Promise<ClassSummary> {
    const renamed = await studio().call('classes.rename', { datasetId, classId, name })
    datasets.changed(datasetId)
    await datasets.loadStats()
    return renamed
  }

  async function mergeClasses(datasetId: number, sourceClassId: number, targetClassId: number): Promise<LabelActionResult> {
    return after(datasetId, await studio().call('classes.merge', { datasetId, sourceClassId, targetClassId }))
  }

  async function deleteClass(datasetId: number, classId: number): Promise<LabelActionResult> {
    return after(datasetId, await studio().call('classes.delete', { datasetId, classId }))
  }

  return { lastAction, setLabels, undo, redo, createClass, renameClass, mergeClasses, deleteClass }
})
