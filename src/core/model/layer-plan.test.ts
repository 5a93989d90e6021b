import * as tf from '@tensorflow/tfjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  layerPlanSchema,
  PLAN_BLOCK_CONVS,
  PLAN_DEPTHS,
  PLAN_LIMITS,
  planLayerNames,
  type LayerMode,
  type LayerPlan,
  type PlanDepth
} from '../../shared/layer-plan-schema'
import { VGG_BLOCK_CONVS } from '../weights/vgg-spec'
import {
  DEFAULT_SMALL_FC_WIDTH,
  frozenPrefix,
  listPresets,
  lrMultiplierOf,
  lrMultipliersByVariable,
  makePlan,
  planTotals,
  presets,
  toBuildOptions,
  validatePlan
} from './layer-plan'
import {
  buildVgg,
  FULL_FC_WIDTH,
  listLayers,
  planVgg,
  PRETRAINED_INPUT_SIZE,
  SMALL_FC_WIDTH,
  VGG_CONFIGS,
  vggWeightLayerNames,
  type VggOptions
} from './vgg'

beforeAll(async () => {
  await tf.setBackend('cpu')
})

const built: tf.LayersModel[] = []
afterAll(() => {
  for (const m of built) m.dispose()
})

function build(options: VggOptions): tf.LayersModel {
  const model = buildVgg(options)
  built.push(model)
  return model
}

/** A plan with some layers changed. */
function withModes(plan: LayerPlan, modes: Record<string, LayerMode>): LayerPlan {
  return { ...plan, layers: { ...plan.layers, ...modes } }
}

/** Every layer frozen except the given ones, which train with WN. */
function training(depth: PlanDepth, inputSize: number, trained: readonly string[]): LayerPlan {
  const base = makePlan('everything', { depth, inputSize, numClasses: 10 })
  const layers = Object.fromEntries(planLayerNames(depth).map((n) => [n, trained.includes(n) ? 'train+wn' : 'frozen'])) as Record<string, LayerMode>
  return { ...base, layers }
}

const VGG16_CONVS = [
  'block1_conv1',
  'block1_conv2',
  'block2_conv1',
  'block2_conv2',
  'block3_conv1',
  'block3_conv2',
  'block3_conv3',
  'block4_conv1',
  'block4_conv2',
  'block4_conv3',
  'block5_conv1',
  'block5_conv2',
  'block5_conv3'
]

describe('the shared layer table', () => {
  it('agrees with the VGG topologies and defaults in core', () => {
    expect([PLAN_LIMITS.pretrainedInputSize, PLAN_LIMITS.pretrainedFcWidth, DEFAULT_SMALL_FC_WIDTH]).toEqual([
      PRETRAINED_INPUT_SIZE,
      FULL_FC_WIDTH,
      SMALL_FC_WIDTH
    ])
    expect(VGG_CONFIGS[16].blocks.map((b) => b.filters)).toEqual([64, 128, 256, 512, 512])
    for (const depth of PLAN_DEPTHS) {
      expect(PLAN_BLOCK_CONVS[depth]).toEqual(VGG_BLOCK_CONVS[depth])
      expect(planLayerNames(depth)).toEqual(vggWeightLayerNames(depth))
    }
  })
})

describe('presets', () => {
  const modesOf = (plan: LayerPlan, mode: LayerMode) => Object.keys(plan.layers).filter((n) => plan.layers[n] === mode)

  it('train exactly the layers they name, with WN on those by default', () => {
    const head = makePlan('head-only', { numClasses: 10 })
    expect(modesOf(head, 'train+wn')).toEqual(['predictions'])
    expect(modesOf(head, 'frozen')).toEqual([...VGG16_CONVS, 'fc1', 'fc2'])

    const last = makePlan('last-block-head', { numClasses: 10 })
    expect(modesOf(last, 'train+wn')).toEqual(['block5_conv1', 'block5_conv2', 'block5_conv3', 'fc1', 'fc2', 'predictions'])
    expect(modesOf(last, 'frozen')).toEqual(VGG16_CONVS.slice(0, 10))

    const two = makePlan('last-two-blocks-head', { numClasses: 10 })
    expect(modesOf(two, 'train+wn')).toEqual([...VGG16_CONVS.slice(7), 'fc1', 'fc2', 'predictions'])
    expect(modesOf(two, 'frozen')).toEqual(VGG16_CONVS.slice(0, 7))

    const all = makePlan('everything', { numClasses: 10 })
    expect(modesOf(all, 'train+wn')).toEqual([...VGG16_CONVS, 'fc1', 'fc2', 'predictions'])

    // VGG19's block5 has four convs.
    const last19 = makePlan('last-block-head', { depth: 19, inputSize: 32, numClasses: 3 })
    expect(modesOf(last19, 'train+wn').slice(0, 4)).toEqual(['block5_conv1', 'block5_conv2', 'block5_conv3', 'block5_conv4'])
    expect(listPresets().map((p) => p.name)).toEqual(['head-only', 'last-block-head', 'last-two-blocks-head', 'everything'])
    expect(presets['head-only'].trainedClassifier).toEqual(['predictions'])
  })

  it('fill in the model and lr multipliers: pretrained layers x0.1, new ones x1', () => {
    const at224 = makePlan('last-block-head', { numClasses: 5 })
    expect(at224).toMatchObject({ depth: 16, inputSize: 224, numClasses: 5, fcWidth: 4096, dropout: 0.5, pretrainedFc: true })
    expect(at224.lrMultipliers).toEqual({ block1: 0.1, block2: 0.1, block3: 0.1, block4: 0.1, block5: 0.1, fc: 0.1, predictions: 1 })
    // Below 224 fc1/fc2 are new, so they learn at the full rate.
    const at64 = makePlan('last-block-head', { depth: 11, inputSize: 64, numClasses: 5 })
    expect(at64).toMatchObject({ depth: 11, inputSize: 64, fcWidth: 512, pretrainedFc: false })
    expect(at64.lrMultipliers.fc).toBe(1)
    expect(lrMultiplierOf(at64, 'block5_conv2')).toBe(0.1)
    expect(lrMultiplierOf(at64, 'fc2')).toBe(1)
  })

  it('weightNorm none / trained / all', () => {
    const none = makePlan('last-block-head', { inputSize: 32, numClasses: 3, weightNorm: 'none' })
    expect(new Set(Object.values(none.layers))).toEqual(new Set(['frozen', 'train']))
    const all = makePlan('last-block-head', { inputSize: 32, numClasses: 3, weightNorm: 'all' })
    expect(all.layers.block1_conv1).toBe('frozen+wn')
    expect(all.layers.block5_conv1).toBe('train+wn')
    // 'all' puts WN on frozen layers, which validation rejects; with 'everything' it equals 'trained'.
    expect(validatePlan(all).problems.filter((p) => p.code === 'wn-on-frozen')).toHaveLength(10)
    expect(makePlan('everything', { inputSize: 32, numClasses: 3, weightNorm: 'all' })).toEqual(makePlan('everything', { inputSize: 32, numClasses: 3 }))
  })

  it('are valid (every preset, depth and size) with no warnings at 32 except a frozen new classifier', () => {
    for (const name of ['head-only', 'last-block-head', 'last-two-blocks-head', 'everything'] as const) {
      for (const depth of PLAN_DEPTHS) {
        for (const inputSize of [32, 224]) {
          const check = validatePlan(makePlan(name, { depth, inputSize, numClasses: 10 }))
          expect(check.problems).toEqual([])
        }
      }
      const warnings = validatePlan(makePlan(name, { inputSize: 32, numClasses: 10 })).warnings
      expect(warnings.map((w) => w.field)).toEqual(name === 'head-only' ? ['layers.fc1', 'layers.fc2'] : [])
    }
  })
})

describe('parameter counts match buildVgg', () => {
  function expectRowsMatchModel(plan: LayerPlan, model: tf.LayersModel): void {
    const totals = planTotals(plan)
    const layers = listLayers(model)
    expect(totals.layers.map((r) => r.name)).toEqual(layers.map((l) => l.name))
    totals.layers.forEach((row, i) => {
      const l = layers[i]
      expect([row.name, ...row.outputShape]).toEqual([l.name, ...l.outputShape.slice(1)])
      expect([row.name, row.params, row.trainableParams]).toEqual([l.name, l.params, l.trainableParams])
      expect([row.name, row.mode === 'train+wn' || row.mode === 'frozen+wn']).toEqual([l.name, l.weightNorm])
    })
    expect(totals.params.total).toBe(layers.reduce((s, l) => s + l.params, 0))
    expect(totals.params.trainable).toBe(layers.reduce((s, l) => s + l.trainableParams, 0))
    expect(totals.params.frozen).toBe(totals.params.total - totals.params.trainable)
  }

  it('VGG16@32 last block + head with WN, built from toBuildOptions', () => {
    const plan = makePlan('last-block-head', { inputSize: 32, numClasses: 10 })
    expectRowsMatchModel(plan, build(toBuildOptions(plan)))
    const totals = planTotals(plan)
    // Hand count: VGG16@32 with a 512-wide classifier and 10 classes has 15,245,130 weights.
    expect(totals.params.total - totals.params.weightNormExtra).toBe(15_245_130)
    // One g per output channel of the WN layers: 3·512 (block5) + 512 + 512 + 10.
    expect(totals.params.weightNormExtra).toBe(3 * 512 + 512 + 512 + 10)
    // block5: 3·(9·512·512 + 512) + g; fc1, fc2: 512·512 + 512 + g; predictions 512·10 + 10 + g.
    expect(totals.params.trainable).toBe(3 * (9 * 512 * 512 + 2 * 512) + 2 * (512 * 512 + 2 * 512) + (5120 + 20))
  })

  it('VGG11@64 head only without WN, no dropout', () => {
    const plan = makePlan('head-only', { depth: 11, inputSize: 64, numClasses: 4, weightNorm: 'none', dropout: 0 })
    expectRowsMatchModel(plan, build(toBuildOptions(plan)))
    expect(planTotals(plan).params.trainable).toBe(512 * 4 + 4)
  })

  it('VGG13@32 with a mix of frozen, train, train+wn and frozen+wn layers', () => {
    const plan = withModes(makePlan('everything', { depth: 13, inputSize: 32, numClasses: 7, fcWidth: 64, weightNorm: 'none' }), {
      block1_conv1: 'frozen+wn',
      block2_conv2: 'frozen',
      block3_conv1: 'train+wn',
      fc2: 'train+wn'
    })
    // frozen+wn is a problem for the plan, but buildVgg can still build it: the counts must agree.
    const { weightNorm, trainable } = {
      weightNorm: new Set(['block1_conv1', 'block3_conv1', 'fc2']),
      trainable: new Set(vggWeightLayerNames(13).filter((n) => n !== 'block1_conv1' && n !== 'block2_conv2'))
    }
    expectRowsMatchModel(plan, build({ depth: 13, inputSize: 32, numClasses: 7, fcWidth: 64, weightNorm, trainable }))
  })

  it('VGG16@224, 1000 classes: 138,357,544 weights (from planVgg, no tensors), + 13,416 g with WN everywhere', () => {
    const plain = makePlan('everything', { numClasses: 1000, weightNorm: 'none' })
    const kernels = [...planVgg(toBuildOptions(plain)).kernelShapes.values()]
    const fromPlanVgg = kernels.reduce((s, shape) => s + shape.reduce((a, b) => a * b, 1) + shape[shape.length - 1], 0)
    expect(fromPlanVgg).toBe(138_357_544)
    expect(planTotals(plain).params.total).toBe(fromPlanVgg)
    const wn = planTotals(makePlan('everything', { numClasses: 1000 }))
    const channels = kernels.reduce((s, shape) => s + shape[shape.length - 1], 0)
    expect(channels).toBe(13_416)
    expect(wn.params.weightNormExtra).toBe(channels)
    expect(wn.params.total).toBe(138_357_544 + 13_416)
    expect(wn.weightNormNormedWeights).toBe(138_357_544 - channels)
  })
})

describe('FLOPs', () => {
  it('VGG16@224 forward: 15,470,264,320 multiply-accumulates = 30.94 GFLOPs', () => {
    // Conv MACs (H·W·9·Cin·Cout), summed by hand per block; fc: 25088·4096 + 4096·4096 + 4096·1000.
    const convMacs =
      224 * 224 * 9 * (3 * 64 + 64 * 64) +
      112 * 112 * 9 * (64 * 128 + 128 * 128) +
      56 * 56 * 9 * (128 * 256 + 2 * 256 * 256) +
      28 * 28 * 9 * (256 * 512 + 2 * 512 * 512) +
      14 * 14 * 9 * (3 * 512 * 512)
    expect(convMacs).toBe(15_346_630_656)
    const fcMacs = 25088 * 4096 + 4096 * 4096 + 4096 * 1000
    expect(convMacs + fcMacs).toBe(15_470_264_320)
    const totals = planTotals(makePlan('everything', { numClasses: 1000 }))
    expect(totals.flops.forward).toBe(30_940_528_640)
    // Everything trains: weight gradients of every layer, input gradients of all but block1_conv1.
    const block1Conv1 = 2 * 224 * 224 * 9 * 3 * 64
    expect(totals.flops.backwardWeights).toBe(30_940_528_640)
    expect(totals.flops.backwardInput).toBe(30_940_528_640 - block1Conv1)
    expect(totals.flops.train).toBe(3 * 30_940_528_640 - block1Conv1)
    expect(totals.flops.frozenPrefixForward).toBe(0)
    expect(totals.layers.reduce((s, r) => s + r.backwardFlops, 0)).toBe(totals.flops.backwardInput + totals.flops.backwardWeights)
    expect(totals.layers.find((r) => r.name === 'block3_conv2')?.forwardFlops).toBe(2 * 56 * 56 * 9 * 256 * 256)
  })

  it('VGG16@32: forward 627,451,904; head-only and last-block training by hand', () => {
    const head = planTotals(makePlan('head-only', { inputSize: 32, numClasses: 10 }))
    expect(head.flops.forward).toBe(627_451_904)
    expect(head.flops.backwardInput).toBe(0)
    expect(head.flops.backwardWeights).toBe(2 * 512 * 10)
    expect(head.flops.train).toBe(627_451_904 + 10_240)
    // The cache stops at fc1 (fc1_dropout is random each step): fc2 and predictions still run.
    expect(head.frozenPrefix).toBe('fc1')
    expect(head.flops.trainWithFeatureCache).toBe(2 * 512 * 512 + 10_240 + 10_240)

    const last = planTotals(makePlan('last-block-head', { inputSize: 32, numClasses: 10 }))
    const block5Conv = 2 * 2 * 2 * 9 * 512 * 512 // 2x2 map at 32
    expect(block5Conv).toBe(18_874_368)
    const fc = 2 * 512 * 512
    expect(last.flops.backwardWeights).toBe(3 * block5Conv + 2 * fc + 10_240)
    expect(last.flops.backwardInput).toBe(2 * block5Conv + 2 * fc + 10_240)
    expect(last.flops.frozenPrefixForward).toBe(627_451_904 - (3 * block5Conv + 2 * fc + 10_240))
    expect(last.flops.train).toBe(627_451_904 + last.flops.backwardInput + last.flops.backwardWeights)
  })

  it('a frozen layer between trainable ones costs its input gradient but no weight gradient', () => {
    const plan = training(16, 32, ['block5_conv1', 'block5_conv3', 'predictions'])
    const rows = planTotals(plan).layers
    const row = (n: string) => rows.find((r) => r.name === n)
    expect(row('block5_conv1')?.backwardFlops).toBe(18_874_368) // weights only: nothing trains before it
    expect(row('block5_conv2')?.backwardFlops).toBe(18_874_368) // input gradient only
    expect(row('block5_conv3')?.backwardFlops).toBe(2 * 18_874_368)
    expect(row('block4_conv3')?.backwardFlops).toBe(0)
  })
})

describe('training memory', () => {
  it('head-only, VGG16@32, batch 4, Adam: by hand', () => {
    const totals = planTotals(makePlan('head-only', { inputSize: 32, numClasses: 10 }), { batchSize: 4 })
    // Kept: fc2_dropout's output (predictions' input, 512) and the logits (10).
    expect(totals.layers.filter((r) => r.keptForBackward).map((r) => r.name)).toEqual(['fc2_dropout', 'predictions'])
    expect(totals.memory.activationsPerImage).toBe(4 * (512 + 10))
    expect(totals.memory.activations).toBe(4 * 4 * 522)
    // 15,245,130 weights + 10 g; trainable: predictions 5120 + 10 + 10 g.
    expect(totals.memory.parameters).toBe(4 * 15_245_140)
    expect(totals.memory.gradients).toBe(4 * 5140)
    expect(totals.memory.optimizerState).toBe(4 * 2 * 5140)
    expect(totals.memory.total).toBe(8352 + 60_980_560 + 20_560 + 41_120)
    expect(planTotals(makePlan('head-only', { inputSize: 32, numClasses: 10 }), { batchSize: 4, optimizer: 'sgd' }).memory.optimizerState).toBe(0)
  })

  it('last-block-head, VGG16@32: from block5_conv1 input to logits', () => {
    const totals = planTotals(makePlan('last-block-head', { inputSize: 32, numClasses: 10 }), { batchSize: 1, optimizer: 'momentum' })
    expect(totals.layers.filter((r) => r.keptForBackward).map((r) => r.name)).toEqual([
      'block4_pool',
      'block5_conv1',
      'block5_conv2',
      'block5_conv3',
      'block5_pool',
      'fc1',
      'fc1_dropout',
      'fc2',
      'fc2_dropout',
      'predictions'
    ])
    // 2·2·512 input + 3 convs of 2·2·512 + pool 512 + four 512-vectors + 10 logits.
    expect(totals.memory.activationsPerImage).toBe(4 * (2048 + 3 * 2048 + 512 + 4 * 512 + 10))
    expect(totals.memory.optimizerState).toBe(totals.memory.gradients)
    expect(totals.frozenPrefix).toBe('block4_pool')
    expect(totals.frozenPrefixBytesPerImage).toBe(4 * 2048)
  })

  it('keeps the image when block1_conv1 trains, and looks through flatten when fc1 is first', () => {
    const all = planTotals(makePlan('everything', { inputSize: 32, numClasses: 10 }))
    expect(all.layers[0]).toMatchObject({ name: 'input', keptForBackward: true, activationBytes: 4 * 32 * 32 * 3 })
    const fcFirst = planTotals(training(16, 32, ['fc1', 'fc2', 'predictions']))
    const kept = fcFirst.layers.filter((r) => r.keptForBackward).map((r) => r.name)
    expect(kept[0]).toBe('block5_pool')
    expect(kept).not.toContain('flatten')
    expect(fcFirst.frozenPrefix).toBe('flatten')
    expect(fcFirst.frozenPrefixBytesPerImage).toBe(4 * 512)
  })
})

describe('validatePlan', () => {
  const base = makePlan('last-block-head', { inputSize: 32, numClasses: 10 })
  const problemsOf = (plan: LayerPlan) => validatePlan(plan).problems.map(({ code, field, message }) => ({ code, field, message }))
  const warningsOf = (plan: LayerPlan) => validatePlan(plan).warnings.map(({ code, field, message }) => ({ code, field, message }))

  it('WN on a frozen layer', () => {
    expect(problemsOf(withModes(base, { block3_conv1: 'frozen+wn' }))).toEqual([
      { code: 'wn-on-frozen', field: 'layers.block3_conv1', message: 'block3_conv1: weight normalization applies only to a layer that trains' }
    ])
  })

  it('nothing trainable', () => {
    const frozen = Object.fromEntries(planLayerNames(16).map((n) => [n, 'frozen'])) as Record<string, LayerMode>
    expect(problemsOf({ ...base, layers: frozen })).toEqual([
      { code: 'nothing-trains', field: 'layers', message: 'nothing trains: choose at least one layer to train' }
    ])
  })

  it('pretrained fc1/fc2 at another input size or width', () => {
    const p = problemsOf(makePlan('last-block-head', { inputSize: 64, numClasses: 10, pretrainedFc: true, fcWidth: 4096 }))
    expect(p).toHaveLength(1)
    expect(p[0]).toMatchObject({ code: 'pretrained-fc-input-size', field: 'pretrainedFc' })
    expect(p[0].message).toMatch(/fit only input size 224.*at 64 it reads 2·2·512 = 2048/)
    const narrow = problemsOf(makePlan('last-block-head', { numClasses: 10, pretrainedFc: true, fcWidth: 512 }))
    expect(narrow).toEqual([
      { code: 'pretrained-fc-width', field: 'fcWidth', message: 'pretrained fc1/fc2 are 4096 wide, the plan asks for 512: use 4096 or make fc1/fc2 new' }
    ])
    // New fc layers at 224 are fine.
    expect(problemsOf(makePlan('last-block-head', { numClasses: 10, pretrainedFc: false, fcWidth: 512 }))).toEqual([])
  })

  it('input size, classes, fc width, dropout, lr multipliers', () => {
    expect(problemsOf({ ...base, inputSize: 100 })).toEqual([
      { code: 'input-size', field: 'inputSize', message: 'input size must be a multiple of 32 from 32 to 224 (e.g. 32, 64, 224), got 100' }
    ])
    expect(problemsOf({ ...base, inputSize: 256 }).map((p) => p.field)).toEqual(['inputSize'])
    expect(problemsOf({ ...base, inputSize: 0 }).map((p) => p.field)).toEqual(['inputSize'])
    expect(problemsOf({ ...base, numClasses: 1 })).toEqual([
      { code: 'num-classes', field: 'numClasses', message: 'a classifier needs at least 2 classes (at most 100000), got 1' }
    ])
    expect(problemsOf({ ...base, fcWidth: 0, dropout: 1 }).map((p) => p.field)).toEqual(['fcWidth', 'dropout'])
    expect(problemsOf({ ...base, lrMultipliers: { ...base.lrMultipliers, block5: 0, fc: 11 } })).toEqual([
      { code: 'lr-multiplier', field: 'lrMultipliers.block5', message: 'an lr multiplier must be above 0 and at most 10, got 0' },
      { code: 'lr-multiplier', field: 'lrMultipliers.fc', message: 'an lr multiplier must be above 0 and at most 10, got 11' }
    ])
    expect(problemsOf({ ...base, lrMultipliers: { ...base.lrMultipliers, fc: 10 } })).toEqual([])
  })

  it('layers the depth lacks or has', () => {
    const { block5_conv3: _dropped, ...layers } = base.layers
    expect(problemsOf({ ...base, layers: { ...layers, block5_conv4: 'train' } })).toEqual([
      { code: 'layer-missing', field: 'layers.block5_conv3', message: 'block5_conv3: VGG16 has this layer, but the plan gives it no mode' },
      { code: 'layer-unknown', field: 'layers.block5_conv4', message: 'block5_conv4: VGG16 has no layer of this name' }
    ])
  })

  it('warns: WN on fc1 at 224', () => {
    const w = warningsOf(makePlan('head-only', { numClasses: 10, weightNorm: 'none' }))
    expect(w).toEqual([])
    const wn = warningsOf(withModes(makePlan('last-block-head', { numClasses: 10 }), { fc2: 'train' }))
    expect(wn).toEqual([
      {
        code: 'wn-large-layer',
        field: 'layers.fc1',
        message: 'WN on fc1 at 224 costs a norm over 102.8M weights every step (forward and backward); train fc1 without WN to avoid it'
      }
    ])
  })

  it('warns: an early block trains while later blocks stay frozen, and frozen layers sit between trainable ones', () => {
    const plan = training(16, 32, ['block1_conv1', 'block1_conv2', 'block4_conv1', 'block4_conv2', 'block4_conv3', 'block5_conv1', 'block5_conv2', 'block5_conv3', 'fc1', 'fc2', 'predictions'])
    const w = warningsOf(plan)
    expect(w.map((x) => x.code)).toEqual(['early-block-trains', 'frozen-between'])
    expect(w[0]).toEqual({
      code: 'early-block-trains',
      field: 'layers.block1_conv1',
      message: 'training block1 with frozen later blocks (block2, block3) is unusual: early blocks hold generic features, later ones usually need to adapt first'
    })
    // block2_conv1 … block3_conv3 at 32: (16·16·9·(64·128 + 128·128) + 8·8·9·(128·256 + 2·256·256))·2 FLOPs.
    const flops = 2 * (16 * 16 * 9 * (64 * 128 + 128 * 128) + 8 * 8 * 9 * (128 * 256 + 2 * 256 * 256))
    expect(flops).toBe(301_989_888)
    expect(w[1]).toEqual({
      code: 'frozen-between',
      field: 'layers.block2_conv1',
      message:
        'block2_conv1 … block3_conv3 (5 layers) stay frozen between trainable layers: gradients still flow through, costing 302.0 MFLOPs per image each step without training them'
    })
  })

  it('warns once per frozen run, naming a single layer on its own', () => {
    const w = warningsOf(training(16, 32, ['block5_conv1', 'block5_conv3', 'fc1', 'predictions']))
    expect(w.map((x) => [x.code, x.field])).toEqual([
      ['frozen-between', 'layers.block5_conv2'],
      ['frozen-between', 'layers.fc2'],
      ['new-layer-frozen', 'layers.fc2']
    ])
    expect(w[0].message).toMatch(/^block5_conv2 stays frozen between trainable layers: gradients still flow through, costing 18\.9 MFLOPs/)
    expect(w[2].message).toBe("fc2 is frozen but new (ImageNet's fc2 does not fit input size 32): it keeps its random initial weights")
  })
})

describe('layerPlanSchema', () => {
  it('round-trips a plan through JSON', () => {
    for (const plan of [makePlan('last-two-blocks-head', { numClasses: 12 }), makePlan('head-only', { depth: 19, inputSize: 96, numClasses: 2 })]) {
      const parsed = layerPlanSchema.parse(JSON.parse(JSON.stringify(plan)))
      expect(parsed).toEqual(plan)
    }
  })

  it('defaults depth to 16', () => {
    const { depth: _depth, ...rest } = makePlan('everything', { inputSize: 32, numClasses: 3 })
    expect(layerPlanSchema.parse(rest).depth).toBe(16)
  })

  it('names the layer, group or field in its error paths', () => {
    const plan = makePlan('last-block-head', { inputSize: 32, numClasses: 10 })
    const paths = (value: unknown) => {
      const r = layerPlanSchema.safeParse(value)
      expect(r.success).toBe(false)
      return r.error?.issues.map((i) => [i.path.join('.'), i.message]) ?? []
    }
    const badMode = paths({ ...plan, layers: { ...plan.layers, block5_conv1: 'trian' } })
    expect(badMode).toHaveLength(1)
    expect(badMode[0][0]).toBe('layers.block5_conv1')
    expect(paths({ ...plan, lrMultipliers: { ...plan.lrMultipliers, block5: 0 } })).toEqual([
      ['lrMultipliers.block5', 'an lr multiplier must be above 0 and at most 10, got 0']
    ])
    expect(paths({ ...plan, inputSize: 48 })).toEqual([['inputSize', 'input size must be a multiple of 32 from 32 to 224 (e.g. 32, 64, 224), got 48']])
    expect(paths({ ...plan, depth: 11 })).toContainEqual(['layers.block1_conv2', 'block1_conv2: VGG11 has no layer of this name'])
    expect(paths({ ...plan, extra: true }).map((p) => p[0])).toEqual([''])
    expect(paths({ ...plan, lrMultipliers: { ...plan.lrMultipliers, block6: 1 } }).map((p) => p[0])).toEqual(['lrMultipliers'])
  })
})

describe('toBuildOptions, lr multipliers per variable, frozen prefix', () => {
  it('builds what the plan says and scales every trainable variable by its group', () => {
    const plan = withModes(makePlan('last-block-head', { depth: 11, inputSize: 32, numClasses: 3 }), { fc2: 'train' })
    const options = toBuildOptions(plan)
    expect([...options.trainable]).toEqual(['block5_conv1', 'block5_conv2', 'fc1', 'fc2', 'predictions'])
    expect([...options.weightNorm]).toEqual(['block5_conv1', 'block5_conv2', 'fc1', 'predictions'])
    expect([...options.freshLayers]).toEqual(['fc1', 'fc2', 'predictions'])
    const model = build(options)
    for (const l of listLayers(model)) {
      if (l.name in plan.layers) {
        expect([l.name, l.trainable, l.weightNorm]).toEqual([l.name, plan.layers[l.name].startsWith('train'), plan.layers[l.name].endsWith('+wn')])
      }
    }
    const byVariable = lrMultipliersByVariable(plan, model)
    expect(byVariable.size).toBe(model.trainableWeights.length)
    // block5 convs: v, g, bias at 0.1; fc1 (WN): 3 variables, fc2 (plain): 2, predictions (WN): 3, all at 1.
    expect([...byVariable.values()]).toEqual([...Array(6).fill(0.1), ...Array(8).fill(1)])
    for (const [name, m] of byVariable) expect([name, m]).toEqual([name, name.startsWith('block5') ? 0.1 : 1])
    // A model built from another plan is caught.
    expect(() => lrMultipliersByVariable(makePlan('head-only', { depth: 11, inputSize: 32, numClasses: 3 }), model)).toThrow(
      /block5_conv1 has trainable weights, but the plan does not train it/
    )
    expect(toBuildOptions(makePlan('head-only', { numClasses: 3 })).freshLayers).toEqual(new Set(['predictions']))
  })

  it('refuses a plan with problems', () => {
    const plan = withModes(makePlan('head-only', { inputSize: 32, numClasses: 3 }), { block3_conv1: 'frozen+wn' })
    expect(() => toBuildOptions(plan)).toThrow(/cannot be built: block3_conv1: weight normalization applies only to a layer that trains/)
    expect(() => planTotals({ ...plan, inputSize: 50 })).toThrow(/does not describe a model: inputSize/)
  })

  it('frozenPrefix ends at the last frozen layer before the first trainable one or the first dropout', () => {
    expect(frozenPrefix(makePlan('everything', { inputSize: 32, numClasses: 3 }))).toBeNull()
    expect(frozenPrefix(makePlan('last-two-blocks-head', { inputSize: 32, numClasses: 3 }))).toBe('block3_pool')
    expect(frozenPrefix(makePlan('last-block-head', { depth: 19, inputSize: 32, numClasses: 3 }))).toBe('block4_pool')
    expect(frozenPrefix(makePlan('head-only', { inputSize: 32, numClasses: 3 }))).toBe('fc1')
    expect(frozenPrefix(makePlan('head-only', { inputSize: 32, numClasses: 3, dropout: 0 }))).toBe('fc2')
    expect(frozenPrefix(training(16, 32, ['block3_conv2', 'predictions']))).toBe('block3_conv1')
  })
})
