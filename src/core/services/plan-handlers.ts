import path from 'node:path'
import { listPresets, makePlan, planTotals, validatePlan } from '../model/layer-plan'
import { loadVggWeights } from '../weights/load-weights'
import { WeightFileError } from '../weights/weight-file-error'
import { ApiError } from '../../shared/errors'
import type { WeightsInfo } from '../../shared/dto'
import type { ServiceHandlers } from './dispatch'

/** Reads and checks a weights file (every tensor's name, shape and values) and says what it holds. */
export async function inspectWeights(file: string): Promise<WeightsInfo> {
  const resolved = path.resolve(file)
  try {
    const { source, format, depth, preprocessing, hasTop, numClasses, warnings } = await loadVggWeights(resolved)
    return { path: resolved, source, format, depth, preprocessing, hasTop, numClasses, warnings }
  } catch (error) {
    if (error instanceof WeightFileError) throw new ApiError({ code: 'invalid_input', message: error.message, fields: [{ path: 'path', message: error.message }] })
    throw error
  }
}

/** The layer picker's calls: pure computations over a plan, no TensorFlow.js loaded. */
export function planHandlers(): Pick<ServiceHandlers, 'plans.presets' | 'plans.make' | 'plans.evaluate' | 'weights.inspect'> {
  return {
    'weights.inspect': ({ path: file }) => inspectWeights(file),
    'plans.presets': async () => listPresets(),
    'plans.make': async ({ preset, ...options }) => makePlan(preset, options),
    'plans.evaluate': async ({ plan, batchSize, optimizer }) => ({ ...validatePlan(plan), totals: planTotals(plan, { batchSize, optimizer }) })
  }
}
