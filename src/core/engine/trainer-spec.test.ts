import { describe, expect, it } from 'vitest'
import { parseTrainerSpec, trainerSpecSchema, type TrainerSpecInput } from './trainer-spec'

const valid: TrainerSpecInput = {
  runId: 'run-1',
  model: { depth: 16, inputSize: 32, numClasses: 2, fcWidth: 32, dropout: 0.5, weightNorm: ['fc1'], trainable: ['fc1', 'fc2', 'predictions'], lrMultipliers: { fc1: 0.1 } },
  weights: null,
  data: {
    items: [
      { path: '/a.png', label: 0, split: 'train' },
      { path: '/b.png', label: 1, split: 'validation' }
    ],
    classNames: ['cat', 'dog']
  },
  optimizer: { kind: 'adamw', learningRate: 1e-3, weightDecay: 1e-4 },
  schedule: { kind: 'cosine', warmupEpochs: 1 },
  batchSize: 8,
  epochs: 3,
  seed: 1,
  earlyStopping: { patience: 2, metric: 'val_accuracy' },
  classWeights: 'balanced',
  augmentation: { flip: true, crop: 4, rotationDegrees: 0, brightness: 0, contrast: 0 },
  checkpointDir: '/tmp/x'
}

function error(input: unknown): string {
  try {
    parseTrainerSpec(input)
  } catch (e) {
    return (e as Error).message
  }
  throw new Error('expected the spec to be refused')
}

describe('trainer spec', () => {
  it('accepts a full spec as JSON and fills in the defaults', () => {
    const spec = parseTrainerSpec(JSON.parse(JSON.stringify(valid)))
    expect(spec.stepMetricsEvery).toBe(1)
    expect(spec.checkpointRetention).toBe('all')
    expect(spec.model.lrMultipliers).toEqual({ fc1: 0.1 })
  })

  it('names the field at fault', () => {
    expect(error({ ...valid, batchSize: 0 })).toMatch(/^invalid training spec: batchSize: /)
    expect(error({ ...valid, optimizer: { kind: 'rmsprop', learningRate: 1 } })).toMatch(/optimizer\.kind/)
    expect(error({ ...valid, model: { ...valid.model, inputSize: 40 } })).toMatch(/model\.inputSize: must be a multiple of 32/)
    expect(error({ ...valid, model: { ...valid.model, numClasses: 3 } })).toMatch(/model\.numClasses: is 3 but data\.classNames has 2/)
    expect(error({ ...valid, data: { ...valid.data, items: [{ path: '/a', label: 2, split: 'train' }] } })).toMatch(/data\.items\.0\.label: 2 is not a class index/)
    expect(error({ ...valid, schedule: { kind: 'step', warmupEpochs: 0 } })).toMatch(/schedule\.stepEpochs/)
    expect(error({ ...valid, data: { ...valid.data, items: [{ path: '/a', label: 0, split: 'train' }] } })).toMatch(/earlyStopping: needs validation items/)
    const { runId: _runId, ...noRunId } = valid
    expect(error(noRunId)).toMatch(/runId/)
  })

  it('is a zod schema the service can reuse', () => {
    expect(trainerSpecSchema.safeParse({ ...valid, epochs: 1.5 }).success).toBe(false)
  })
})
