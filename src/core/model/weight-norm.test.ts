import * as tf from '@tensorflow/tfjs'
import '@tensorflow/tfjs-backend-wasm'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { installWasmConvGradients, uninstallWasmConvGradients } from '../engine/conv-grad'
import {
  channelNorm,
  channelSum,
  dataDependentInit,
  normalizedKernel,
  normalizedOutput,
  toWeightNorm,
  weightNormFromPretrained,
  weightNormKernel,
  WeightNormConv2D,
  WeightNormDense
} from './weight-norm'

beforeAll(async () => {
  await tf.setBackend('cpu')
})

/** max |a - b| / max |b|. */
function relErr(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync()
  const y = b.dataSync()
  expect(x.length).toBe(y.length)
  let diff = 0
  let scale = 0
  for (let i = 0; i < x.length; i++) {
    diff = Math.max(diff, Math.abs(x[i] - y[i]))
    scale = Math.max(scale, Math.abs(y[i]))
  }
  return diff / Math.max(scale, 1e-30)
}

function randomConv(activation: 'relu' | 'linear' = 'relu'): tf.layers.Layer {
  const conv = tf.layers.conv2d({
    name: 'plain_conv',
    filters: 6,
    kernelSize: 3,
    strides: 2,
    padding: 'same',
    activation,
    biasInitializer: tf.initializers.randomNormal({ seed: 3 })
  })
  conv.apply(tf.zeros([1, 9, 9, 4]))
  return conv
}

function randomDense(activation: 'relu' | 'linear' = 'relu'): tf.layers.Layer {
  const dense = tf.layers.dense({
    name: 'plain_dense',
    units: 7,
    activation,
    biasInitializer: tf.initializers.randomNormal({ seed: 4 })
  })
  dense.apply(tf.zeros([1, 12]))
  return dense
}

describe('weight-normalized layers compute w = g v / ||v||', () => {
  it('channelNorm is the per-output-channel norm over all other axes', () => {
    const v = tf.randomNormal([3, 3, 4, 5], 0, 1, 'float32', 1)
    const values = v.arraySync() as number[][][][]
    const expected = new Float64Array(5)
    for (const a of values) for (const b of a) for (const c of b) c.forEach((x, o) => (expected[o] += x * x))
    const got = channelNorm(v).dataSync()
    expected.forEach((e, o) => expect(got[o]).toBeCloseTo(Math.sqrt(e), 4))
  })

  it('the effective kernel scales each output channel of v to norm g', () => {
    const v = tf.randomNormal([6, 4], 0, 1, 'float32', 2)
    const g = tf.tensor1d([0.5, 2, 3, -1])
    const w = weightNormKernel(v, g)
    const norms = channelNorm(w).dataSync()
    expect(Array.from(norms)).toEqual([0.5, 2, 3, 1].map((x) => expect.closeTo(x, 5)))
    // Same direction as v: w / v is constant down each column.
    const ratio = tf.div(w, v).arraySync() as number[][]
    for (let o = 0; o < 4; o++) for (const row of ratio) expect(row[o]).toBeCloseTo(ratio[0][o], 5)
  })

  it('a WN conv computes conv2d with g v / ||v||, and scaling g scales the pre-activations', () => {
    const layer = new WeightNormConv2D({ filters: 5, kernelSize: [3, 2], strides: [1, 2], padding: 'valid', activation: 'linear' })
    const x = tf.randomNormal([2, 7, 8, 3], 0, 1, 'float32', 5)
    const y = layer.apply(x) as tf.Tensor
    expect(y.shape).toEqual([2, 5, 4, 5])
    expect(layer.computeOutputShape([null, 7, 8, 3])).toEqual([null, 5, 4, 5])
    layer.gParam.write(tf.tensor1d([1, 2, 3, 4, 5]))
    layer.biasParam?.write(tf.tensor1d([0.1, 0.2, 0.3, 0.4, 0.5]))
    const w = weightNormKernel(layer.vParam.read(), layer.gParam.read())
    const reference = tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, [1, 2], 'valid'), layer.biasParam?.read() ?? 0)
    expect(relErr(layer.apply(x) as tf.Tensor, reference)).toBeLessThan(1e-5)
  })
})

describe('converting a pretrained layer preserves its outputs', () => {
  it('conv: v = w, g = ||w||, same outputs', () => {
    const plain = randomConv()
    const wn = toWeightNorm(plain)
    expect(wn).toBeInstanceOf(WeightNormConv2D)
    expect(wn.name).toBe('plain_conv')
    const [kernel] = plain.getWeights()
    expect(relErr(wn.vParam.read(), kernel)).toBe(0)
    expect(relErr(wn.gParam.read(), channelNorm(kernel))).toBe(0)
    expect(wn.vParam.originalName).toBe('plain_conv/v')
    for (let seed = 0; seed < 3; seed++) {
      const x = tf.randomNormal([2, 9, 9, 4], 0, 3, 'float32', 10 + seed)
      expect(relErr(wn.apply(x) as tf.Tensor, plain.apply(x) as tf.Tensor)).toBeLessThanOrEqual(1e-5)
    }
    // The converted layer is not trivially equal: it does depend on g.
    wn.gParam.write(tf.mul(wn.gParam.read(), 1.5))
    const x = tf.randomNormal([1, 9, 9, 4], 0, 1, 'float32', 20)
    expect(relErr(wn.apply(x) as tf.Tensor, plain.apply(x) as tf.Tensor)).toBeGreaterThan(0.1)
  })

  it('dense: v = w, g = ||w||, same outputs (rank 2 and rank 3 inputs)', () => {
    const plain = randomDense()
    const wn = toWeightNorm(plain)
    expect(wn).toBeInstanceOf(WeightNormDense)
    for (let seed = 0; seed < 3; seed++) {
      const x = tf.randomNormal([4, 12], 0, 3, 'float32', 30 + seed)
      expect(relErr(wn.apply(x) as tf.Tensor, plain.apply(x) as tf.Tensor)).toBeLessThanOrEqual(1e-5)
    }
    const x3 = tf.randomNormal([2, 3, 12], 0, 1, 'float32', 40)
    expect(relErr(wn.apply(x3) as tf.Tensor, plain.apply(x3) as tf.Tensor)).toBeLessThanOrEqual(1e-5)
  })

  it('weightNormFromPretrained + setFromPlain on a fresh layer gives the same outputs', () => {
    const plain = randomConv('linear')
    const [kernel, bias] = plain.getWeights()
    const p = weightNormFromPretrained(kernel, bias)
    expect(relErr(p.g, channelNorm(kernel))).toBe(0)
    const wn = new WeightNormConv2D({ filters: 6, kernelSize: 3, strides: 2, padding: 'same' })
    const x = tf.randomNormal([3, 9, 9, 4], 0, 1, 'float32', 50)
    const before = wn.apply(x) as tf.Tensor
    expect(relErr(before, plain.apply(x) as tf.Tensor)).toBeGreaterThan(0.1)
    wn.setFromPlain(kernel, bias)
    expect(relErr(wn.apply(x) as tf.Tensor, plain.apply(x) as tf.Tensor)).toBeLessThanOrEqual(1e-5)
    expect(() => wn.setFromPlain(tf.zeros([3, 3, 5, 6]))).toThrow(/kernel shape/)
  })

  it('rejects layers it cannot convert', () => {
    const pool = tf.layers.maxPooling2d({ poolSize: 2 })
    pool.apply(tf.zeros([1, 4, 4, 1]))
    expect(() => toWeightNorm(pool)).toThrow(/only Conv2D and Dense/)
    expect(() => toWeightNorm(tf.layers.dense({ units: 2 }))).toThrow(/not built/)
  })
})

describe('gradients of v and g', () => {
  // Loss sum(R * y) for a fixed random R, through the layer itself.
  function lossOf(layer: WeightNormConv2D | WeightNormDense, x: tf.Tensor, r: tf.Tensor): tf.Scalar {
    return tf.sum(tf.mul(layer.apply(x) as tf.Tensor, r))
  }

  function checkAgainstFiniteDifferences(layer: WeightNormConv2D | WeightNormDense, x: tf.Tensor): void {
    const r = tf.randomNormal((layer.apply(x) as tf.Tensor).shape, 0, 1, 'float32', 60)
    const vVar = layer.vParam.read() as tf.Variable
    const gVar = layer.gParam.read() as tf.Variable
    const { grads } = tf.variableGrads(() => lossOf(layer, x, r), [vVar, gVar])
    const analytic = { v: grads[vVar.name].dataSync(), g: grads[gVar.name].dataSync() }

    const h = 1e-2
    for (const [key, param] of [
      ['v', layer.vParam],
      ['g', layer.gParam]
    ] as const) {
      const base = param.read().dataSync().slice()
      const shape = param.shape as number[]
      for (let i = 0; i < base.length; i++) {
        const at = (delta: number) => {
          const values = base.slice()
          values[i] += delta
          param.write(tf.tensor(values, shape))
          return lossOf(layer, x, r).dataSync()[0]
        }
        const numeric = (at(h) - at(-h)) / (2 * h)
        param.write(tf.tensor(base, shape))
        expect(Math.abs(numeric - analytic[key][i]), `d/d${key}[${i}]: ${numeric} vs ${analytic[key][i]}`).toBeLessThan(
          2e-3 + 5e-3 * Math.abs(analytic[key][i])
        )
      }
    }
  }

  it('conv: autodiff matches central differences', () => {
    const layer = new WeightNormConv2D({ filters: 3, kernelSize: 2, strides: 1, padding: 'same', activation: 'linear' })
    const x = tf.randomNormal([2, 4, 4, 2], 0, 1, 'float32', 61)
    layer.apply(x)
    layer.gParam.write(tf.tensor1d([0.7, -1.3, 2.1]))
    checkAgainstFiniteDifferences(layer, x)
  })

  it('dense: autodiff matches central differences', () => {
    const layer = new WeightNormDense({ units: 4, activation: 'tanh' })
    const x = tf.randomNormal([5, 6], 0, 1, 'float32', 62)
    layer.apply(x)
    layer.gParam.write(tf.tensor1d([0.7, -1.3, 2.1, 1]))
    checkAgainstFiniteDifferences(layer, x)
  })

  // The layers above pick one order by size; check the other order of each too.
  it('conv with the output scaled (conv(x, v) * s) matches central differences', () => {
    const layer = new WeightNormConv2D({ filters: 3, kernelSize: 2, strides: 1, padding: 'same', activation: 'linear' })
    const x = tf.randomNormal([2, 4, 4, 2], 0, 1, 'float32', 65)
    layer.apply(x)
    expect(layer.scalesOutput(x)).toBe(false)
    vi.spyOn(layer, 'scalesOutput').mockReturnValue(true)
    layer.gParam.write(tf.tensor1d([0.7, -1.3, 2.1]))
    checkAgainstFiniteDifferences(layer, x)
  })

  it('dense with the kernel scaled (x (v * s)) matches central differences', () => {
    const layer = new WeightNormDense({ units: 4, activation: 'tanh' })
    const x = tf.randomNormal([2, 6], 0, 1, 'float32', 66)
    layer.apply(x)
    expect(layer.scalesOutput(x)).toBe(true)
    vi.spyOn(layer, 'scalesOutput').mockReturnValue(false)
    layer.gParam.write(tf.tensor1d([0.7, -1.3, 2.1, 1]))
    checkAgainstFiniteDifferences(layer, x)
  })

  it('matches the closed form dL/dg = (dL/dw . v)/||v||, dL/dv = (g/||v||)(dL/dw - v (dL/dw . v)/||v||^2)', () => {
    const layer = new WeightNormDense({ units: 3, activation: 'relu' })
    const x = tf.randomNormal([8, 5], 0, 1, 'float32', 63)
    layer.apply(x)
    layer.gParam.write(tf.tensor1d([1.5, 0.5, -2]))
    const r = tf.randomNormal([8, 3], 0, 1, 'float32', 64)
    const vVar = layer.vParam.read() as tf.Variable
    const gVar = layer.gParam.read() as tf.Variable
    const { grads } = tf.variableGrads(() => lossOf(layer, x, r), [vVar, gVar])

    const v = vVar
    const norm = channelNorm(v)
    const w = weightNormKernel(v, gVar)
    const bias = layer.biasParam?.read() ?? tf.zeros([3])
    const dLdw = tf.grad((k: tf.Tensor) => tf.sum(tf.mul(tf.relu(tf.add(tf.matMul(x as tf.Tensor2D, k as tf.Tensor2D), bias)), r)))(w)
    const dot = tf.sum(tf.mul(dLdw, v), 0)
    const dg = tf.div(dot, norm)
    const dv = tf.mul(tf.div(gVar, norm), tf.sub(dLdw, tf.mul(v, tf.div(dot, tf.square(norm)))))
    expect(relErr(grads[gVar.name], dg)).toBeLessThan(1e-4)
    expect(relErr(grads[vVar.name], dv)).toBeLessThan(1e-4)
    // dL/dv is orthogonal to v (per output channel): WN's gradient projection.
    const orth = tf.sum(tf.mul(grads[vVar.name], v), 0).dataSync()
    const scale = tf.norm(grads[vVar.name]).dataSync()[0] * tf.norm(v).dataSync()[0]
    for (const o of orth) expect(Math.abs(o) / scale).toBeLessThan(1e-5)
  })

  it('frozen layers do not train; trainable ones update both v and g', async () => {
    const frozen = new WeightNormDense({ units: 4, activation: 'relu', trainable: false, name: 'frozen' })
    const head = new WeightNormDense({ units: 2, name: 'head' })
    const input = tf.input({ shape: [3] })
    const model = tf.model({ inputs: input, outputs: head.apply(frozen.apply(input)) as tf.SymbolicTensor })
    expect(frozen.trainableWeights).toHaveLength(0)
    expect(head.trainableWeights.map((w) => w.originalName)).toEqual(['head/v', 'head/g', 'head/bias'])
    expect(model.trainableWeights).toHaveLength(3)
    const snapshot = () => [...frozen.getWeights(), ...head.getWeights()].map((w) => w.dataSync().slice())
    const before = snapshot()
    model.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' })
    const x = tf.randomNormal([16, 3], 0, 1, 'float32', 70)
    const y = tf.randomNormal([16, 2], 0, 1, 'float32', 71)
    await model.trainOnBatch(x, y)
    const after = snapshot()
    const changed = after.map((a, i) => a.some((value, j) => value !== before[i][j]))
    // Order: frozen v, g, bias, then head v, g, bias.
    expect(changed).toEqual([false, false, false, true, true, true])
    frozen.trainable = true
    expect(frozen.trainableWeights).toHaveLength(3)
  })
})

describe('serialization', () => {
  it('getConfig / fromConfig round trip for both layers', () => {
    const conv = new WeightNormConv2D({
      name: 'c',
      filters: 4,
      kernelSize: [3, 1],
      strides: 2,
      padding: 'same',
      activation: 'relu',
      useBias: false,
      kernelInitializer: 'heNormal',
      trainable: false
    })
    const convConfig = conv.getConfig()
    expect(convConfig).toMatchObject({
      name: 'c',
      filters: 4,
      kernelSize: [3, 1],
      strides: [2, 2],
      padding: 'same',
      activation: 'relu',
      useBias: false,
      kernelInitializer: 'heNormal',
      trainable: false
    })
    const registry = tf.serialization.SerializationMap.getMap().classNameMap
    expect(registry.WeightNormConv2D?.[0]).toBe(WeightNormConv2D)
    expect(registry.WeightNormDense?.[0]).toBe(WeightNormDense)
    const conv2 = WeightNormConv2D.fromConfig(WeightNormConv2D, convConfig)
    expect(conv2).toBeInstanceOf(WeightNormConv2D)
    expect(conv2.getConfig()).toEqual(convConfig)

    const dense = new WeightNormDense({ name: 'd', units: 3, activation: 'softmax' })
    const denseConfig = dense.getConfig()
    expect(denseConfig).toMatchObject({ name: 'd', units: 3, activation: 'softmax', useBias: true, kernelInitializer: 'glorotUniform' })
    const dense2 = WeightNormDense.fromConfig(WeightNormDense, denseConfig)
    expect(dense2.getConfig()).toEqual(denseConfig)

    expect(() => new WeightNormDense({ units: 3, activation: 'gelu' as 'relu' })).toThrow(/Unsupported activation/)
  })

  it('a model with WN layers saves and loads with identical outputs', async () => {
    const input = tf.input({ shape: [6, 6, 2] })
    let h = new WeightNormConv2D({ name: 'wn_conv', filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', trainable: false }).apply(
      input
    ) as tf.SymbolicTensor
    h = tf.layers.flatten().apply(h) as tf.SymbolicTensor
    const out = new WeightNormDense({ name: 'wn_dense', units: 4 }).apply(h) as tf.SymbolicTensor
    const model = tf.model({ inputs: input, outputs: out })
    const dense = model.getLayer('wn_dense') as WeightNormDense
    dense.gParam.write(tf.tensor1d([1, 2, 3, 4]))

    let saved: tf.io.ModelArtifacts | null = null
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }
      })
    )
    expect(saved).not.toBeNull()
    const artifacts = saved as unknown as tf.io.ModelArtifacts
    // Trainable weights first, then the frozen conv's.
    expect(artifacts.weightSpecs?.map((s) => s.name)).toEqual([
      'wn_dense/v',
      'wn_dense/g',
      'wn_dense/bias',
      'wn_conv/v',
      'wn_conv/g',
      'wn_conv/bias'
    ])
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts))
    expect(loaded.getLayer('wn_conv')).toBeInstanceOf(WeightNormConv2D)
    expect(loaded.getLayer('wn_conv').trainable).toBe(false)
    expect(loaded.getLayer('wn_dense')).toBeInstanceOf(WeightNormDense)
    const x = tf.randomNormal([3, 6, 6, 2], 0, 1, 'float32', 80)
    expect(relErr(loaded.predict(x) as tf.Tensor, model.predict(x) as tf.Tensor)).toBe(0)
  })
})

describe('data-dependent init (Salimans & Kingma 2016)', () => {
  function stats(t: tf.Tensor): { mean: number[]; variance: number[] } {
    const m = tf.moments(t, Array.from({ length: t.rank - 1 }, (_, i) => i))
    return { mean: Array.from(m.mean.dataSync()), variance: Array.from(m.variance.dataSync()) }
  }

  function preActivations(layer: WeightNormConv2D | WeightNormDense, x: tf.Tensor): tf.Tensor {
    const bias = layer.biasParam?.read() ?? tf.scalar(0)
    return tf.add(layer.linear(x, layer.effectiveKernel()), bias)
  }

  it('conv: pre-activations get mean 0 and variance 1 per channel on the init batch', () => {
    const layer = new WeightNormConv2D({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' })
    const x = tf.add(tf.mul(tf.randomUniform([16, 8, 8, 3], 0, 1, 'float32', 90), 4), 1)
    layer.apply(x)
    const before = stats(preActivations(layer, x))
    expect(Math.max(...before.mean.map(Math.abs))).toBeGreaterThan(0.1)
    const { mean, std } = dataDependentInit(layer, x)
    expect(mean).toHaveLength(8)
    expect(std).toHaveLength(8)
    const after = stats(preActivations(layer, x))
    for (const m of after.mean) expect(Math.abs(m)).toBeLessThan(1e-4)
    for (const v of after.variance) expect(Math.abs(v - 1)).toBeLessThan(1e-3)
    // The layer's own forward pass is relu of exactly these pre-activations.
    expect(relErr(layer.apply(x) as tf.Tensor, tf.relu(preActivations(layer, x)))).toBeLessThan(1e-6)
  })

  it('dense: works on an unbuilt layer, per unit', () => {
    const layer = new WeightNormDense({ units: 5 })
    const x = tf.add(tf.randomNormal([64, 10], 0, 3, 'float32', 91), 2)
    dataDependentInit(layer, x)
    expect(layer.built).toBe(true)
    const after = stats(layer.apply(x) as tf.Tensor)
    for (const m of after.mean) expect(Math.abs(m)).toBeLessThan(1e-4)
    for (const v of after.variance) expect(Math.abs(v - 1)).toBeLessThan(1e-3)
  })

  it('refuses a layer without bias', () => {
    const layer = new WeightNormDense({ units: 2, useBias: false })
    expect(() => dataDependentInit(layer, tf.ones([4, 3]))).toThrow(/no bias/)
  })
})

/** Gradients of sum(f(...inputs) * r) for a fixed random r. */
function gradsOf(f: (...inputs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], seed: number): tf.Tensor[] {
  const r = tf.randomNormal(f(...inputs).shape, 0, 1, 'float32', seed)
  return tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), r)))(inputs)
}

describe.each(['cpu', 'wasm'])('closed-form WN gradients against autodiff of the naive formula (%s)', (backend) => {
  beforeAll(async () => {
    expect(await tf.setBackend(backend)).toBe(true)
    if (backend === 'wasm') installWasmConvGradients()
  })

  afterAll(async () => {
    uninstallWasmConvGradients()
    await tf.setBackend('cpu')
  })

  it('channelSum sums each output channel over all other axes', () => {
    for (const shape of [[3, 3, 4, 5], [7, 6], [2, 5, 5, 3], [1, 4], [4], [600, 2]]) {
      const x = tf.randomNormal(shape, 0, 1, 'float32', 100)
      const values = x.dataSync()
      const out = shape[shape.length - 1]
      const expected = new Float64Array(out)
      values.forEach((value, i) => (expected[i % out] += value))
      const got = channelSum(x)
      expect(got.shape).toEqual([out])
      const data = got.dataSync()
      expected.forEach((e, o) => expect(Math.abs(data[o] - e), `${shape.join('x')}[${o}]`).toBeLessThan(1e-5 * (1 + Math.abs(e)) * Math.sqrt(x.size / out)))
    }
  })

  it('channelSum spreads its gradient back over the summed axes', () => {
    const x = tf.randomNormal([3, 3, 4, 5], 0, 1, 'float32', 111)
    const r = tf.tensor1d([1, -2, 3, 0.5, 4])
    const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(channelSum(t), r)))(x)
    expect(relErr(dx, tf.mul(tf.onesLike(x), r))).toBe(0)
  })

  // v has an all-zero channel (the norm's floor: no gradient through the norm there) and a
  // negative g; as a tensor (saved for the backward pass) and as a variable (read in place).
  function kernelCase(seed: number): { v: tf.Tensor; g: tf.Tensor1D } {
    const v = tf.mul(tf.randomNormal([3, 3, 4, 5], 0, 1, 'float32', seed), tf.tensor1d([1, 1, 0, 1, 1]))
    return { v, g: tf.tensor1d([0.7, -1.3, 1e-6, 2.1, 1]) }
  }

  it.each([false, true])('normalizedKernel: same values as weightNormKernel, same gradients as its autodiff (v a variable: %s)', (asVariable) => {
    const c = kernelCase(101)
    const v = asVariable ? tf.variable(c.v) : c.v
    expect(relErr(normalizedKernel(v, c.g), weightNormKernel(v, c.g))).toBe(0)
    const [dv, dg] = gradsOf(normalizedKernel, [v, c.g], 102)
    const [dvRef, dgRef] = gradsOf(weightNormKernel, [v, c.g], 102)
    expect(relErr(dv, dvRef)).toBeLessThan(1e-5)
    expect(relErr(dg, dgRef)).toBeLessThan(1e-5)
    // The zero channel gets no gradient through the norm: dv there is s * dw only.
    expect(Array.from(tf.sum(tf.abs(dv), [0, 1, 2]).dataSync()).every(Number.isFinite)).toBe(true)
  })

  it.each([false, true])('normalizedOutput of a conv: same values and gradients (x, v, g) as conv with weightNormKernel (v a variable: %s)', (asVariable) => {
    const c = kernelCase(103)
    const v = asVariable ? tf.variable(c.v) : c.v
    const x = tf.randomNormal([2, 6, 6, 4], 0, 1, 'float32', 104)
    const conv = (input: tf.Tensor, kernel: tf.Tensor) => tf.conv2d(input as tf.Tensor4D, kernel as tf.Tensor4D, 1, 'same')
    const ours = (xi: tf.Tensor, vi: tf.Tensor, gi: tf.Tensor) => normalizedOutput(conv(xi, vi), vi, gi)
    const naive = (xi: tf.Tensor, vi: tf.Tensor, gi: tf.Tensor) => conv(xi, weightNormKernel(vi, gi))
    expect(relErr(ours(x, v, c.g), naive(x, v, c.g))).toBeLessThan(1e-5)
    const got = gradsOf(ours, [x, v, c.g], 105)
    const want = gradsOf(naive, [x, v, c.g], 105)
    got.forEach((grad, i) => expect(relErr(grad, want[i]), ['dx', 'dv', 'dg'][i]).toBeLessThan(1e-4))
  })

  it('normalizedOutput of a matMul (rank 3 output): same gradients as matMul with weightNormKernel', () => {
    const v = tf.randomNormal([6, 4], 0, 1, 'float32', 106)
    const g = tf.tensor1d([0.5, 2, -3, 1])
    const x = tf.randomNormal([3, 5, 6], 0, 1, 'float32', 107)
    const dense = (input: tf.Tensor, kernel: tf.Tensor) => tf.reshape(tf.matMul(tf.reshape(input, [15, 6]) as tf.Tensor2D, kernel as tf.Tensor2D), [3, 5, 4])
    const got = gradsOf((xi, vi, gi) => normalizedOutput(dense(xi, vi), vi, gi), [x, v, g], 108)
    const want = gradsOf((xi, vi, gi) => dense(xi, weightNormKernel(vi, gi)), [x, v, g], 108)
    got.forEach((grad, i) => expect(relErr(grad, want[i]), ['dx', 'dv', 'dg'][i]).toBeLessThan(1e-4))
  })

  it.each([false, true])('a WN conv layer gives the same gradients with either order (output scaled: %s)', async (scaleOutput) => {
    const layer = new WeightNormConv2D({ filters: 5, kernelSize: 3, padding: 'same', activation: 'relu' })
    const x = tf.randomNormal([2, 6, 6, 4], 0, 1, 'float32', 109)
    layer.apply(x)
    layer.gParam.write(tf.tensor1d([0.7, -1.3, 0.2, 2.1, 1]))
    vi.spyOn(layer, 'scalesOutput').mockReturnValue(scaleOutput)
    const r = tf.randomNormal([2, 6, 6, 5], 0, 1, 'float32', 110)
    const vars = [layer.vParam.read(), layer.gParam.read()] as tf.Variable[]
    const loss = (): tf.Scalar => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, r))
    const naive = (): tf.Scalar => {
      const bias = layer.biasParam?.read() ?? tf.scalar(0)
      return tf.sum(tf.mul(tf.relu(tf.add(layer.linear(x, weightNormKernel(vars[0], vars[1])), bias)), r))
    }
    const before = tf.memory().numTensors
    const { grads } = tf.tidy(() => tf.variableGrads(loss, vars))
    expect(tf.memory().numTensors).toBe(before + 3) // the loss and two gradients
    const want = tf.variableGrads(naive, vars).grads
    for (const variable of vars) expect(relErr(grads[variable.name], want[variable.name]), variable.name).toBeLessThan(1e-4)
    if (backend === 'wasm') {
      // v's conv gradient comes from the registered fast gradient (conv2d), never from the
      // stock Conv2DBackpropFilter / Conv2DBackpropInput kernels.
      const profile = await tf.profile(() => {
        tf.tidy(() => void tf.variableGrads(loss, vars))
      })
      const kernels = profile.kernels.map((k) => k.name)
      expect(kernels).not.toContain('Conv2DBackpropFilter')
      expect(kernels).not.toContain('Conv2DBackpropInput')
      expect(kernels).toContain('Conv2D')
    }
  })
})

describe('which order a layer picks', () => {
  it('scales the output where it is smaller than the kernel (VGG16 at 32: blocks 4-5 and the dense layers)', () => {
    const conv = (inChannels: number, filters: number, side: number) => {
      const layer = new WeightNormConv2D({ filters, kernelSize: 3, padding: 'same', kernelInitializer: 'zeros' })
      const x = tf.zeros([32, side, side, inChannels])
      layer.build(x.shape)
      return layer.scalesOutput(x)
    }
    expect(conv(3, 64, 32)).toBe(false)
    expect(conv(256, 256, 8)).toBe(false)
    expect(conv(256, 512, 4)).toBe(true)
    expect(conv(512, 512, 2)).toBe(true)
    const dense = new WeightNormDense({ units: 512, kernelInitializer: 'zeros' })
    dense.build([32, 512])
    expect(dense.scalesOutput(tf.zeros([32, 512]))).toBe(true)
  })
})

describe('memory', () => {
  it('a training step leaves no tensors behind, with either order', () => {
    for (const scaleOutput of [false, true]) {
      const layer = new WeightNormConv2D({ filters: 3, kernelSize: 3, padding: 'same' })
      const x = tf.ones([2, 4, 4, 2])
      layer.apply(x)
      vi.spyOn(layer, 'scalesOutput').mockReturnValue(scaleOutput)
      const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable)
      const start = tf.memory().numTensors
      tf.tidy(() => {
        tf.variableGrads(() => tf.sum(layer.apply(x) as tf.Tensor), vars)
      })
      expect(tf.memory().numTensors).toBe(start)
    }
  })

  it('a forward pass in tidy leaves no tensors behind', () => {
    const layer = new WeightNormConv2D({ filters: 2, kernelSize: 1 })
    const x = tf.ones([1, 2, 2, 1])
    layer.apply(x)
    const start = tf.memory().numTensors
    tf.tidy(() => {
      layer.apply(x)
    })
    expect(tf.memory().numTensors).toBe(start)
  })
})
