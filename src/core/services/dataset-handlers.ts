import type { ServiceHandlers } from './dispatch'
import type { Database } from '../store/db'
import { createDataset, datasetStats, deleteDataset, getDataset, listClasses, listDatasets, renameDataset } from '../store/datasets-repo'
import { createClass, deleteClass, mergeClasses, redo, renameClass, setLabels, undo } from '../store/labels-repo'
import { pageImages, setImageStatus } from '../store/images-repo'
import type { LabelActionResult } from '../../shared/dto'

type DatasetMethods =
  | 'datasets.list'
  | 'datasets.create'
  | 'datasets.rename'
  | 'datasets.delete'
  | 'datasets.stats'
  | 'images.page'
  | 'images.setStatus'
  | 'labels.set'
  | 'labels.undo'
  | 'labels.redo'
  | 'classes.list'
  | 'classes.create'
  | 'classes.rename'
  | 'classes.merge'
  | 'classes.delete'

export interface DatasetContext {
  db: Database
  /** Called after any change of labels, so splits and listeners can follow. */
  labelsChanged(datasetId: number): Promise<void>
}

export function datasetHandlers({ db, labelsChanged }: DatasetContext): Pick<ServiceHandlers, DatasetMethods> {
  const afterLabels = async (datasetId: number, result: LabelActionResult) => {
    if (result.changed) await labelsChanged(datasetId)
    return result
  }
  const existing = async (datasetId: number) => {
    await getDataset(db, datasetId)
    return datasetId
  }
  return {
    'datasets.list': () => listDatasets(db),
    'datasets.create': ({ name }) => createDataset(db, name),
    'datasets.rename': ({ datasetId, name }) => renameDataset(db, datasetId, name),
    'datasets.delete': async ({ datasetId }) => ({ deleted: await deleteDataset(db, await existing(datasetId)) }),
    'datasets.stats': ({ datasetId }) => datasetStats(db, datasetId),
    'images.page': async (query) => pageImages(db, { ...query, datasetId: await existing(query.datasetId) }),
    'images.setStatus': async ({ datasetId, imageIds, status }) => {
      const changed = await setImageStatus(db, await existing(datasetId), imageIds, status)
      if (changed) await labelsChanged(datasetId)
      return { changed }
    },
    'labels.set': async ({ datasetId, imageIds, classId }) => afterLabels(datasetId, await setLabels(db, await existing(datasetId), imageIds, classId)),
    'labels.undo': async ({ datasetId }) => afterLabels(datasetId, await undo(db, await existing(datasetId))),
    'labels.redo': async ({ datasetId }) => afterLabels(datasetId, await redo(db, await existing(datasetId))),
    'classes.list': async ({ datasetId }) => listClasses(db, await existing(datasetId)),
    'classes.create': async ({ datasetId, name }) => createClass(db, await existing(datasetId), name),
    'classes.rename': async ({ datasetId, classId, name }) => renameClass(db, await existing(datasetId), classId, name),
    'classes.merge': async ({ datasetId, sourceClassId, targetClassId }) =>
      afterLabels(datasetId, await mergeClasses(db, await existing(datasetId), sourceClassId, targetClassId)),
    'classes.delete': async ({ datasetId, classId }) => afterLabels(datasetId, await deleteClass(db, await existing(datasetId), classId))
  }
}
