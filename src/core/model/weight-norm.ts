/**
 * Weight-normalized convolution and dense layers (Salimans & Kingma 2016).
 *
 * Each layer holds `v` (shaped like the kernel), `g` (one per output channel) and `bias`, and
 * computes with `w = g * v / ||v||`, the norm taken per output channel over every other axis
 * (HWIO conv: axes 0,1,2; dense `[in, out]`: axis 0), i.e. PyTorch `weight_norm(dim=0)`.
 * Each call either scales `v` into the kernel (`conv(x, v * s)`) or scales the output instead
 * (`conv(x, v) * s`, the same numbers), with `s = g / ||v||`, whichever touches fewer values
 * (see `WeightNormLayerBase.scalesOutput`). Both go through a custom gradient with the closed
 * form (`normalizedKernel`, `normalizedOutput`), which takes a few passes over `v` instead of
 * autodiff's chain of square/reduce/sqrt/maximum/div/mul, and computes `||v||` once per step.
 * The conv or matMul itself stays an ordinary op on the tape, so its gradient is the registered
 * one (on wasm: the fast conv gradients of `engine/conv-grad.ts`).
 */
import * as tf from '@tensorflow/tfjs'

type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>
type CustomGradientFunc = Parameters<typeof tf.customGrad>[0]

export type WeightNormActivation = 'linear' | 'relu' | 'softmax' | 'sigmoid' | 'tanh'

/** Initializers for `v` of a fresh layer; `g` then starts at `||v||` so that `w = v`. */
export type WeightNormInitializer = 'glorotUniform' | 'glorotNormal' | 'heUniform' | 'heNormal' | 'zeros'

export interface WeightNormConv2DArgs extends LayerArgs {
  filters: number
  kernelSize: number | [number, number]
  strides?: number | [number, number]
  padding?: 'same' | 'valid'
  activation?: WeightNormActivation
  useBias?: boolean
  kernelInitializer?: WeightNormInitializer
}

export interface WeightNormDenseArgs extends LayerArgs {
  units: number
  activation?: WeightNormActivation
  useBias?: boolean
  kernelInitializer?: WeightNormInitializer
}

/**
 * Floor on the per-channel sum of squares. Far below any real weight's norm (so converting a
 * pretrained layer stays exact) but keeps an all-zero channel at w = 0 instead of NaN.
 */
const SUM_SQUARES_FLOOR = 1e-12

const ACTIVATIONS: ReadonlySet<string> = new Set<WeightNormActivation>(['linear', 'relu', 'softmax', 'sigmoid', 'tanh'])
const INITIALIZERS: ReadonlySet<string> = new Set<WeightNormInitializer>([
  'glorotUniform',
  'glorotNormal',
  'heUniform',
  'heNormal',
  'zeros'
])

function checkActivation(name: string | undefined): WeightNormActivation {
  const a = name ?? 'linear'
  if (!ACTIVATIONS.has(a)) {
    throw new Error(`Unsupported activation '${a}' (expected one of ${[...ACTIVATIONS].join(', ')})`)
  }
  return a as WeightNormActivation
}

function checkInitializer(name: string | undefined): WeightNormInitializer {
  const i = name ?? 'glorotUniform'
  if (!INITIALIZERS.has(i)) {
    throw new Error(`Unsupported kernelInitializer '${i}' (expected one of ${[...INITIALIZERS].join(', ')})`)
  }
  return i as WeightNormInitializer
}

function makeInitializer(name: WeightNormInitializer): ReturnType<typeof tf.initializers.zeros> {
  switch (name) {
    case 'glorotUniform':
      return tf.initializers.glorotUniform({})
    case 'glorotNormal':
      return tf.initializers.glorotNormal({})
    case 'heUniform':
      return tf.initializers.heUniform({})
    case 'heNormal':
      return tf.initializers.heNormal({})
    case 'zeros':
      return tf.initializers.zeros()
  }
}

function activate(x: tf.Tensor, activation: WeightNormActivation): tf.Tensor {
  switch (activation) {
    case 'linear':
      return x
    case 'relu':
      return tf.relu(x)
    case 'softmax':
      return tf.softmax(x, -1)
    case 'sigmoid':
      return tf.sigmoid(x)
    case 'tanh':
      return tf.tanh(x)
  }
}

function pair(x: number | [number, number] | number[], what: string): [number, number] {
  if (typeof x === 'number') return [x, x]
  if (x.length !== 2) throw new Error(`${what} must be a number or a pair, got [${x.join(', ')}]`)
  return [x[0], x[1]]
}

function singleShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
  if (inputShape.length > 0 && Array.isArray(inputShape[0])) {
    const shapes = inputShape as tf.Shape[]
    if (shapes.length !== 1) throw new Error(`Expected one input, got ${shapes.length}`)
    return shapes[0]
  }
  return inputShape as tf.Shape
}

function singleTensor(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  if (Array.isArray(inputs)) {
    if (inputs.length !== 1) throw new Error(`Expected one input, got ${inputs.length}`)
    return inputs[0]
  }
  return inputs
}

/**
 * Per-output-channel sum over all other axes: `[..., C]` -> `[C]`.
 *
 * On wasm: one XNNPACK average pool over a single `rows x 1` window (times `rows`). wasm's Sum
 * first transposes the reduced axes innermost, and a ones-row matMul repacks its big operand;
 * both are ~10x slower (3x3x512x512: ~1 ms against 10-25 ms). Elsewhere a ones-row matMul
 * instead of tf.sum over the leading axes: the cpu backend transposes for that sum, which is
 * ~4x slower (fc1's 25088x4096 kernel: 8.5 s vs 1.9 s).
 */
function channelSumValue(x: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const out = x.shape[x.rank - 1]
    const rows = x.size / out
    if (rows === 1) return tf.reshape(x, [out]) as tf.Tensor1D
    if (tf.getBackend() === 'wasm') {
      const mean = tf.avgPool(tf.reshape(x, [1, rows, 1, out]) as tf.Tensor4D, [rows, 1], 1, 'valid')
      return tf.mul(tf.reshape(mean, [out]), rows) as tf.Tensor1D
    }
    return tf.reshape(tf.matMul(tf.ones([1, rows]), tf.reshape(x, [rows, out]) as tf.Tensor2D), [out]) as tf.Tensor1D
  })
}

/**
 * `channelSum` with its own gradient, the incoming gradient spread back over the summed axes:
 * autodiff through the average pool would run wasm's AvgPoolGrad, which takes time quadratic
 * in the window (seconds for a 3x3x512x512 kernel). (`ones * dy` rather than broadcastTo, whose
 * Tile kernel takes ~150 ms there on wasm against ~2 ms.)
 */
export const channelSum: (x: tf.Tensor) => tf.Tensor1D = tf.customGrad(((x: tf.Tensor) => {
  const shape = x.shape
  return {
    value: channelSumValue(x),
    gradFunc: (dy: tf.Tensor) => tf.tidy(() => tf.mul(tf.ones(shape), dy))
  }
}) as unknown as CustomGradientFunc) as (x: tf.Tensor) => tf.Tensor1D

/** `||v||` per output channel (the last axis), over all other axes. */
export function channelNorm(v: tf.Tensor): tf.Tensor1D {
  // The same ops as scaleAndSlope, so a converted layer's g / ||v|| is exactly 1.
  return tf.tidy(() => tf.sqrt(tf.maximum(channelSum(tf.square(v)), SUM_SQUARES_FLOOR)) as tf.Tensor1D)
}

/** `w = g * v / ||v||`, `g` broadcast along the last (output) axis. Plain ops (autodiff). */
export function weightNormKernel(v: tf.Tensor, g: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(v, tf.div(g, channelNorm(v))))
}

/**
 * What the closed-form gradients need from the forward pass: `norm = ||v||`, `s = g / norm`, and
 * `k = -s / norm^2` where the sum of squares is above the floor, else 0 (there `norm` is a
 * constant, as autodiff of `maximum` has it), so that `d s / d v = k * v` per channel.
 */
function scaleAndSlope(v: tf.Tensor, g: tf.Tensor): { norm: tf.Tensor1D; s: tf.Tensor1D; k: tf.Tensor1D } {
  return tf.tidy(() => {
    const sumSquares = channelSum(tf.square(v))
    const floored = tf.maximum(sumSquares, SUM_SQUARES_FLOOR) as tf.Tensor1D
    const norm = tf.sqrt(floored) as tf.Tensor1D
    const s = tf.div(g, norm) as tf.Tensor1D
    const k = tf.where(tf.greaterEqual(sumSquares, SUM_SQUARES_FLOOR), tf.neg(tf.div(s, floored)), tf.zerosLike(s)) as tf.Tensor1D
    return { norm, s, k }
  })
}

/**
 * `v` itself when it is a variable, which no tidy disposes and which keeps its value until the
 * optimizer runs after the backward pass: the gradient can read it without the full copy that
 * `save` makes (on wasm, a copy of every saved tensor). Anything else goes through `save`.
 */
function keepForBackward(v: tf.Tensor, toSave: tf.Tensor[]): (saved: tf.Tensor[]) => tf.Tensor {
  if (v instanceof tf.Variable) return () => v
  const index = toSave.push(v) - 1
  return (saved) => saved[index]
}

/**
 * `w = v * g / ||v||` (the same values as `weightNormKernel`) with the closed-form gradient:
 * with `s = g / ||v||` and `u = sum(dw * v)` per channel, `dg = u / ||v||` and
 * `dv = s dw - (s u / ||v||^2) v`.
 */
export const normalizedKernel: (v: tf.Tensor, g: tf.Tensor) => tf.Tensor = tf.customGrad(((v: tf.Tensor, g: tf.Tensor, save: tf.GradSaveFunc) => {
  const { norm, s, k } = scaleAndSlope(v, g)
  const toSave: tf.Tensor[] = [norm, s, k]
  const vOf = keepForBackward(v, toSave)
  save(toSave)
  return {
    value: tf.mul(v, s),
    gradFunc: (dw: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const [n, sc, kc] = saved
        const vv = vOf(saved)
        const u = channelSum(tf.mul(dw, vv))
        return [tf.add(tf.mul(dw, sc), tf.mul(vv, tf.mul(u, kc))), tf.div(u, n)]
      })
  }
}) as unknown as CustomGradientFunc)

/**
 * `z * g / ||v||` per output channel (the last axis of `z`), where `z` is the layer's linear op
 * applied with `v` itself: the same values as applying it with `weightNormKernel(v, g)`. Closed-form
 * gradient: with `t = sum(dy * z)` per channel, `dz = s dy`, `dg = t / ||v||`,
 * `dv = -(s t / ||v||^2) v` (the op's own gradient adds the part through `z`).
 */
export const normalizedOutput: (z: tf.Tensor, v: tf.Tensor, g: tf.Tensor) => tf.Tensor = tf.customGrad(((
  z: tf.Tensor,
  v: tf.Tensor,
  g: tf.Tensor,
  save: tf.GradSaveFunc
) => {
  const { norm, s, k } = scaleAndSlope(v, g)
  const toSave: tf.Tensor[] = [z, norm, s, k]
  const vOf = keepForBackward(v, toSave)
  save(toSave)
  return {
    value: tf.mul(z, s),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const [zz, n, sc, kc] = saved
        const t = channelSum(tf.mul(dy, zz))
        return [tf.mul(dy, sc), tf.mul(vOf(saved), tf.mul(t, kc)), tf.div(t, n)]
      })
  }
}) as unknown as CustomGradientFunc)

/**
 * The WN parameters that reproduce a plain layer exactly: `v = w`, `g = ||w||`. `g` is computed
 * with the same ops as the forward pass, so `g / ||v||` is exactly 1 on the same backend.
 */
export function weightNormFromPretrained(
  kernel: tf.Tensor,
  bias?: tf.Tensor
): { v: tf.Tensor; g: tf.Tensor1D; bias: tf.Tensor1D } {
  const out = kernel.shape[kernel.rank - 1]
  if (bias !== undefined && (bias.rank !== 1 || bias.shape[0] !== out)) {
    throw new Error(`bias shape [${bias.shape.join(', ')}] does not match ${out} output channels`)
  }
  return {
    v: tf.clone(kernel),
    g: channelNorm(kernel),
    bias: bias === undefined ? tf.zeros([out]) : (tf.clone(bias) as tf.Tensor1D)
  }
}

/** What the two WN layers share: the `v`, `g`, `bias` variables and how `w` is formed. */
abstract class WeightNormLayerBase extends tf.layers.Layer {
  readonly activation: WeightNormActivation
  readonly useBias: boolean
  readonly kernelInitializer: WeightNormInitializer
  protected vVar: tf.LayerVariable | null = null
  protected gVar: tf.LayerVariable | null = null
  protected biasVar: tf.LayerVariable | null = null

  constructor(args: LayerArgs & { activation?: WeightNormActivation; useBias?: boolean; kernelInitializer?: WeightNormInitializer }) {
    super(args)
    this.activation = checkActivation(args.activation)
    this.useBias = args.useBias ?? true
    this.kernelInitializer = checkInitializer(args.kernelInitializer)
  }

  /** The plain op without bias or activation: conv2d or matMul with the given kernel. */
  abstract linear(x: tf.Tensor, kernel: tf.Tensor): tf.Tensor

  /**
   * Whether a call on `x` scales the output (`linear(x, v) * s`) rather than the kernel
   * (`linear(x, v * s)`). Same values; the cost differs. Scaling the kernel takes about 8 passes
   * over `v`-sized tensors per training step (square, reduce, scale; backward: product,
   * reduce, two products and a sum); scaling the output about 4 over `v` (square, reduce;
   * backward: the `v` term and its addition to the op's own gradient) and about 5 over the
   * output (scale, a saved copy; backward: scale, product, reduce). So the output is scaled
   * when it is smaller than 4/5 of the kernel: VGG's dense layers, and at 32x32 blocks 4-5.
   */
  scalesOutput(x: tf.Tensor): boolean {
    const shape = this.computeOutputShape(x.shape) as number[]
    const outputSize = shape.reduce((a, b) => a * b, 1)
    return 5 * outputSize < 4 * this.vParam.read().size
  }

  /** Pre-activations with the current `g` (`unitScale` false) or with `g = 1` (true), without bias. */
  preActivation(x: tf.Tensor, unitScale = false): tf.Tensor {
    return tf.tidy(() => {
      const v = this.vParam.read()
      const g = unitScale ? tf.onesLike(this.gParam.read()) : this.gParam.read()
      return this.scalesOutput(x) ? normalizedOutput(this.linear(x, v), v, g) : this.linear(x, normalizedKernel(v, g))
    })
  }

  /** Shape of `v` (and of the folded kernel) for a given number of input channels. */
  abstract kernelShapeFor(inChannels: number): number[]

  /** Number of output channels (filters or units). */
  abstract get outChannels(): number

  protected createWeights(inChannels: number): void {
    const out = this.outChannels
    this.vVar = this.addWeight('v', this.kernelShapeFor(inChannels), 'float32', makeInitializer(this.kernelInitializer))
    this.gVar = this.addWeight('g', [out], 'float32', tf.initializers.ones())
    if (this.useBias) this.biasVar = this.addWeight('bias', [out], 'float32', tf.initializers.zeros())
    // A fresh layer starts as the plain layer its initializer would give (w = v). With zeros
    // (weights about to be loaded) g does not matter, and fc1's norm costs seconds on cpu.
    if (this.kernelInitializer !== 'zeros') {
      tf.tidy(() => {
        this.gParam.write(channelNorm(this.vParam.read()))
      })
    }
    this.built = true
  }

  get vParam(): tf.LayerVariable {
    if (this.vVar === null) throw new Error(`Layer ${this.name} is not built yet`)
    return this.vVar
  }

  get gParam(): tf.LayerVariable {
    if (this.gVar === null) throw new Error(`Layer ${this.name} is not built yet`)
    return this.gVar
  }

  /** The bias variable, or null when `useBias` is false. */
  get biasParam(): tf.LayerVariable | null {
    if (this.vVar === null) throw new Error(`Layer ${this.name} is not built yet`)
    return this.biasVar
  }

  /** The kernel the layer computes with: `g * v / ||v||`. */
  effectiveKernel(): tf.Tensor {
    return weightNormKernel(this.vParam.read(), this.gParam.read())
  }

  /** Make the layer compute exactly what a plain layer with this kernel and bias computes. */
  setFromPlain(kernel: tf.Tensor, bias?: tf.Tensor): void {
    const expected = this.vParam.shape
    if (kernel.shape.length !== expected.length || kernel.shape.some((d, i) => d !== expected[i])) {
      throw new Error(`Layer ${this.name}: kernel shape [${kernel.shape.join(', ')}] does not match [${expected.join(', ')}]`)
    }
    const p = weightNormFromPretrained(kernel, bias)
    try {
      this.vParam.write(p.v)
      this.gParam.write(p.g)
      if (this.biasVar !== null) this.biasVar.write(p.bias)
      else if (bias !== undefined) throw new Error(`Layer ${this.name} has no bias (useBias: false)`)
    } finally {
      tf.dispose([p.v, p.g, p.bias])
    }
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      let y = this.preActivation(singleTensor(inputs))
      if (this.biasVar !== null) y = tf.add(y, this.biasVar.read())
      return activate(y, this.activation)
    })
  }

  protected baseWnConfig(): tf.serialization.ConfigDict {
    return {
      activation: this.activation,
      useBias: this.useBias,
      kernelInitializer: this.kernelInitializer
    }
  }
}

export class WeightNormConv2D extends WeightNormLayerBase {
  static className = 'WeightNormConv2D'
  readonly filters: number
  readonly kernelSize: [number, number]
  readonly strides: [number, number]
  readonly padding: 'same' | 'valid'

  constructor(args: WeightNormConv2DArgs) {
    super(args)
    if (!Number.isInteger(args.filters) || args.filters < 1) {
      throw new Error(`WeightNormConv2D: filters must be a positive integer, got ${args.filters}`)
    }
    this.filters = args.filters
    this.kernelSize = pair(args.kernelSize, 'kernelSize')
    this.strides = pair(args.strides ?? 1, 'strides')
    this.padding = args.padding ?? 'valid'
    if (this.padding !== 'same' && this.padding !== 'valid') {
      throw new Error(`WeightNormConv2D: padding must be 'same' or 'valid', got '${String(this.padding)}'`)
    }
  }

  get outChannels(): number {
    return this.filters
  }

  kernelShapeFor(inChannels: number): number[] {
    return [this.kernelSize[0], this.kernelSize[1], inChannels, this.filters]
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = singleShape(inputShape)
    const inChannels = shape[shape.length - 1]
    if (shape.length !== 4 || inChannels === null) {
      throw new Error(`WeightNormConv2D expects NHWC input with known channels, got [${shape.join(', ')}]`)
    }
    this.createWeights(inChannels)
  }

  linear(x: tf.Tensor, kernel: tf.Tensor): tf.Tensor {
    return tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, this.strides, this.padding)
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = singleShape(inputShape)
    const spatial = [1, 2].map((axis, i) => {
      const n = shape[axis]
      if (n === null) return null
      const span = this.padding === 'same' ? n : n - this.kernelSize[i] + 1
      return Math.ceil(span / this.strides[i])
    })
    return [shape[0], spatial[0], spatial[1], this.filters]
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      filters: this.filters,
      kernelSize: [...this.kernelSize],
      strides: [...this.strides],
      padding: this.padding,
      ...this.baseWnConfig(),
      ...super.getConfig()
    }
  }
}

export class WeightNormDense extends WeightNormLayerBase {
  static className = 'WeightNormDense'
  readonly units: number

  constructor(args: WeightNormDenseArgs) {
    super(args)
    if (!Number.isInteger(args.units) || args.units < 1) {
      throw new Error(`WeightNormDense: units must be a positive integer, got ${args.units}`)
    }
    this.units = args.units
  }

  get outChannels(): number {
    return this.units
  }

  kernelShapeFor(inChannels: number): number[] {
    return [inChannels, this.units]
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = singleShape(inputShape)
    const inFeatures = shape[shape.length - 1]
    if (shape.length < 2 || inFeatures === null) {
      throw new Error(`WeightNormDense expects input of rank >= 2 with a known last axis, got [${shape.join(', ')}]`)
    }
    this.createWeights(inFeatures)
  }

  linear(x: tf.Tensor, kernel: tf.Tensor): tf.Tensor {
    if (x.rank === 2) return tf.matMul(x as tf.Tensor2D, kernel as tf.Tensor2D)
    const lead = x.shape.slice(0, -1)
    const flat = tf.reshape(x, [-1, x.shape[x.rank - 1]]) as tf.Tensor2D
    return tf.reshape(tf.matMul(flat, kernel as tf.Tensor2D), [...lead, this.units])
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = singleShape(inputShape)
    return [...shape.slice(0, -1), this.units]
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      units: this.units,
      ...this.baseWnConfig(),
      ...super.getConfig()
    }
  }
}

export type WeightNormLayer = WeightNormConv2D | WeightNormDense

export function isWeightNormLayer(layer: tf.layers.Layer): layer is WeightNormLayer {
  return layer instanceof WeightNormConv2D || layer instanceof WeightNormDense
}

/** Builds a layer outside a model under its own name scope, so its weights are named `<layer>/v` etc. */
function buildStandalone(layer: WeightNormLayer, kernelShape: readonly number[]): void {
  const probe = layer instanceof WeightNormConv2D ? [1, kernelShape[0], kernelShape[1], kernelShape[2]] : [1, kernelShape[0]]
  tf.tidy(() => {
    layer.apply(tf.zeros(probe))
  })
}

/**
 * A weight-normalized copy of a built plain `Conv2D` or `Dense` layer (same name, config,
 * `trainable`), computing exactly what the plain layer computes.
 */
export function toWeightNorm(layer: tf.layers.Layer): WeightNormLayer {
  const className = layer.getClassName()
  if (className !== 'Conv2D' && className !== 'Dense') {
    throw new Error(`toWeightNorm: ${layer.name} is a ${className}; only Conv2D and Dense can be converted`)
  }
  if (!layer.built) throw new Error(`toWeightNorm: ${layer.name} is not built (it has no weights yet)`)
  const config = layer.getConfig()
  const [kernel, bias] = layer.getWeights()
  const common = {
    name: layer.name,
    trainable: layer.trainable,
    activation: checkActivation(config.activation as string | undefined),
    useBias: config.useBias !== false,
    kernelInitializer: 'zeros' as const
  }
  const wn =
    className === 'Conv2D'
      ? new WeightNormConv2D({
          ...common,
          filters: config.filters as number,
          kernelSize: config.kernelSize as [number, number],
          strides: config.strides as [number, number],
          padding: config.padding as 'same' | 'valid'
        })
      : new WeightNormDense({ ...common, units: config.units as number })
  if (className === 'Conv2D') {
    const dataFormat = config.dataFormat as string | undefined
    const dilation = pair((config.dilationRate as number | number[] | undefined) ?? 1, 'dilationRate')
    if ((dataFormat !== undefined && dataFormat !== 'channelsLast') || dilation[0] !== 1 || dilation[1] !== 1) {
      throw new Error(`toWeightNorm: ${layer.name} uses ${dataFormat} / dilation ${dilation.join('x')}; only channelsLast, no dilation`)
    }
  }
  buildStandalone(wn, kernel.shape)
  wn.setFromPlain(kernel, bias)
  return wn
}

/**
 * Salimans & Kingma's data-dependent initialization for a freshly created layer: with
 * `t = x * v/||v||` over one batch, sets `g = 1/sigma[t]` and `bias = -mu[t]/sigma[t]` so the
 * pre-activations `g * t + bias` have mean 0 and variance 1 per output channel on that batch.
 * Builds the layer from the batch if needed. Returns the statistics of `t` it used.
 */
export function dataDependentInit(
  layer: WeightNormLayer,
  inputBatch: tf.Tensor,
  epsilon = 1e-6
): { mean: Float32Array; std: Float32Array } {
  if (!layer.built) {
    tf.tidy(() => {
      layer.apply(inputBatch)
    })
  }
  const biasVar = layer.biasParam
  if (biasVar === null) throw new Error(`dataDependentInit: ${layer.name} has no bias, so it cannot be centred`)
  const [mean, std] = tf.tidy(() => {
    const t = layer.preActivation(inputBatch, true)
    const axes = Array.from({ length: t.rank - 1 }, (_, i) => i)
    const m = tf.moments(t, axes)
    return [m.mean, tf.sqrt(tf.add(m.variance, epsilon))]
  })
  try {
    tf.tidy(() => {
      const g = tf.div(1, std)
      layer.gParam.write(g)
      biasVar.write(tf.neg(tf.mul(mean, g)))
    })
    return { mean: mean.dataSync() as Float32Array, std: std.dataSync() as Float32Array }
  } finally {
    tf.dispose([mean, std])
  }
}

tf.serialization.registerClass(WeightNormConv2D)
tf.serialization.registerClass(WeightNormDense)
