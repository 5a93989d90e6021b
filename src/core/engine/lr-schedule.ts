import type { ScheduleSpec } from './trainer-spec'

export interface ScheduleContext {
  baseLearningRate: number
  stepsPerEpoch: number
  epochs: number
}

/**
 * The learning rate for the optimizer step with 0-based index `step`, counted over the whole run.
 *
 * Warm-up: the first `warmupEpochs * stepsPerEpoch` steps ramp linearly, step i taking
 * `base * (i + 1) / warmupSteps`, so the first step is not 0 and the last warm-up step is `base`.
 * After that:
 * - constant: `base`;
 * - step: `base * gamma ^ floor(step / (stepEpochs * stepsPerEpoch))`, epochs counted from the
 *   start of the run (like PyTorch's StepLR), warm-up included;
 * - cosine: `base * (1 + cos(pi * p)) / 2`, p going from 0 on the first step after warm-up to 1
 *   at the end of the last epoch (so it approaches 0 but the last step is still above 0).
 */
export function learningRateAt(schedule: ScheduleSpec, context: ScheduleContext, step: number): number {
  const { baseLearningRate: base, stepsPerEpoch, epochs } = context
  const warmupSteps = Math.round(schedule.warmupEpochs * stepsPerEpoch)
  if (step < warmupSteps) return (base * (step + 1)) / warmupSteps
  switch (schedule.kind) {
    case 'constant':
      return base
    case 'step': {
      const every = (schedule.stepEpochs ?? 1) * stepsPerEpoch
      return base * Math.pow(schedule.gamma ?? 1, Math.floor(step / every))
    }
    case 'cosine': {
      const total = epochs * stepsPerEpoch
      const span = Math.max(1, total - warmupSteps)
      const p = Math.min(1, (step - warmupSteps) / span)
      return (base * (1 + Math.cos(Math.PI * p))) / 2
    }
  }
}
