import { listPresets, makePlan, planTotals, validatePlan } from '../model/layer-plan'
import type { ServiceHandlers } from './dispatch'

/** The layer picker's calls: pure computations over a plan, no TensorFlow.js loaded. */
export function planHandlers(): Pick<ServiceHandlers, 'plans.presets' | 'plans.make' | 'plans.evaluate'> {
  return {
    'plans.presets': async () => listPresets(),
    'plans.make': async ({ preset, ...options }) => makePlan(preset, options),
    'plans.evaluate': async ({ plan, batchSize, optimizer }) => ({ ...validatePlan(plan), totals: planTotals(plan, { batchSize, optimizer }) })
  }
}
