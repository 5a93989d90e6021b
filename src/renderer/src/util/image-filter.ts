import type { Split } from '../../../shared/dto'
import type { ImageFilter, ImageSort } from '../composables/use-image-pages'

/** What the Datasets view's filter bar shows. */
export interface GridFilterState {
  show: 'all' | 'unlabelled' | 'rejected' | 'duplicates'
  classId: number | null
  split: Split | null
  sort: ImageSort
  descending: boolean
}

export function defaultGridFilter(): GridFilterState {
  return { show: 'all', classId: null, split: null, sort: 'imported', descending: false }
}

/** The contract's filter for a filter bar's state. */
export function toImageFilter(state: GridFilterState): ImageFilter {
  const filter: ImageFilter = {}
  if (state.show === 'unlabelled') filter.unlabelled = true
  if (state.show === 'rejected') filter.status = 'rejected'
  if (state.show === 'duplicates') filter.duplicates = true
  if (state.classId && state.show !== 'unlabelled') filter.classId = state.classId
  if (state.split && state.show !== 'unlabelled') filter.split = state.split
  return filter
}
