/**
 * Trainable convolutions on the TensorFlow.js wasm backend.
 *
 * The stock wasm backend (4.22) has no `Conv2DBackpropFilter` kernel, so the stock Conv2D
 * gradient throws as soon as a conv filter is trained, and its `Conv2DBackpropInput`
 * (conv2dTranspose) runs ~10x slower than a forward conv. We replace the Conv2D gradient with
 * one built only from ops the wasm backend runs fast (XNNPACK convolutions and transposes, pad,
 * flipLeftRight):
 *
 * - dx: a stride-1 conv of dy with the filter rotated 180 degrees and its in/out channels
 *   swapped, padded so the output has x's size (any padding, any odd or even kernel size).
 *   Strides > 1 keep the stock `conv2DBackpropInput` (which wasm has).
 * - dW: a convolution in which the batch plays the channel role (see conv2dFilterGrad), any
 *   stride (as a dilation), any padding.
 * Slice and Concat are avoided: on wasm they copy their whole input into fresh JS memory
 * (backend.readSync), which is slow, and on this VM very slow (~6 ms per MB faulted in).
 *
 * Gradients are registered globally by kernel name in tfjs-core (`registerGradient` keeps one
 * `GradConfig` per kernel name, whatever the backend), so the installed gradient checks the
 * active backend each time it runs and hands anything else to the stock gradient it
 * replaced. Our formulation is exact (same sums, other order), so running it everywhere would
 * also be correct; limiting it keeps cpu/webgl/tensorflow behaviour bit-for-bit stock.
 *
 * `tf.fused.conv2d` with a linear (or no) activation inside a gradient tape (which is what a
 * tf.layers Conv2D with the default 'linear' activation runs) computes its gradient in a private
 * custom gradient that calls the Conv2DBackpropFilter/Input kernels directly, bypassing the
 * registry. For it we also register a wasm `Conv2DBackpropFilter` kernel built from wasm kernel
 * functions (same formulation), so it trains; its dx stays the stock, slow Conv2DBackpropInput.
 * With 'relu' or 'elu' (VGG) tf.layers runs the conv unfused while recording, so the fast
 * gradient applies.
 */
import * as tf from '@tensorflow/tfjs'

type Pad = tf.Conv2DAttrs['pad']
type Pair = [number, number]

export interface WasmConvGradientsOptions {
  /** Backends on which the replacement runs; the stock gradient runs elsewhere. Default ['wasm']. */
  backends?: readonly string[]
}

interface Installed {
  stock: tf.GradConfig
  backends: Set<string>
  /** Whether we registered the wasm Conv2DBackpropFilter kernel (and so remove it again). */
  ownsKernel: boolean
}

let installed: Installed | null = null

function pair(v: number | Pair): Pair {
  return typeof v === 'number' ? [v, v] : v
}

function isOne(v: number | Pair): boolean {
  const [a, b] = pair(v)
  return a === 1 && b === 1
}

interface ConvGeometry {
  kh: number
  kw: number
  sh: number
  sw: number
  ho: number
  wo: number
  top: number
  left: number
}

function geometry(xShape: number[], filterShape: number[], strides: number | Pair, pad: Pad, dimRoundingMode?: 'floor' | 'round' | 'ceil'): ConvGeometry {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode
  )
  return {
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    ho: info.outHeight,
    wo: info.outWidth,
    top: info.padInfo.top,
    left: info.padInfo.left
  }
}

/** x padded so that a 'valid' conv with the filter at the given strides gives the output size. */
function padInput(x: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const [, h, w] = x.shape
  // Rows past the last window are never read; 'same' with strides can ask for fewer than exist.
  const bottom = g.sh * (g.ho - 1) + g.kh - h - g.top
  const right = g.sw * (g.wo - 1) + g.kw - w - g.left
  if (g.top === 0 && g.left === 0 && bottom === 0 && right === 0) return x
  if (bottom >= 0 && right >= 0) {
    return tf.pad(x, [[0, 0], [g.top, bottom], [g.left, right], [0, 0]])
  }
  const padded = tf.pad(x, [[0, 0], [g.top, Math.max(bottom, 0)], [g.left, Math.max(right, 0)], [0, 0]])
  return tf.slice(padded, [0, 0, 0, 0], [-1, g.top + h + bottom, g.left + w + right, -1])
}

/**
 * The filter rotated 180 degrees with in/out channels swapped: out[a, b, o, i] =
 * filter[kh-1-a, kw-1-b, i, o]. Reversing both spatial axes is reversing the flattened kh*kw
 * axis, which `flipLeftRight` does when that axis is the image width: on wasm this costs ~14 ms
 * for 3x3x512x512 (the transpose), against ~80 ms with tf.reverse.
 */
export function rotateFilter(filter: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, cin, cout] = filter.shape
    const flipped = tf.image.flipLeftRight(tf.reshape(filter, [1, 1, kh * kw, cin * cout]) as tf.Tensor4D)
    return tf.transpose(tf.reshape(flipped, [kh, kw, cin, cout]), [0, 1, 3, 2]) as tf.Tensor4D
  })
}

/**
 * Gradient of conv2d(x, filter, strides, pad) with respect to x, for dilation 1, NHWC.
 * Stride 1: a forward conv of dy with the rotated, channel-swapped filter. Otherwise the
 * stock conv2DBackpropInput.
 */
export function conv2dInputGrad(
  xShape: [number, number, number, number],
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  strides: number | Pair,
  pad: Pad,
  dimRoundingMode?: 'floor' | 'round' | 'ceil'
): tf.Tensor4D {
  return tf.tidy(() => {
    const g = geometry(xShape, filter.shape, strides, pad, dimRoundingMode)
    const [, h, w] = xShape
    // dx[i] = sum_k dy[i + top - k] W[k]: a correlation of dy, padded by (k - 1 - top) before
    // and (h + top - ho) after, with the flipped kernel.
    const pt = g.kh - 1 - g.top
    const pb = h + g.top - g.ho
    const pl = g.kw - 1 - g.left
    const pr = w + g.left - g.wo
    if (g.sh !== 1 || g.sw !== 1 || pt < 0 || pb < 0 || pl < 0 || pr < 0) {
      return tf.conv2dTranspose(dy, filter, xShape, strides, pad, dimRoundingMode)
    }
    const rotated = rotateFilter(filter)
    if (pt === 0 && pb === 0 && pl === 0 && pr === 0) return tf.conv2d(dy, rotated, 1, 'valid')
    if (pt === pb && pl === pr && pt === (g.kh - 1) / 2 && pl === (g.kw - 1) / 2) {
      return tf.conv2d(dy, rotated, 1, 'same')
    }
    return tf.conv2d(tf.pad(dy, [[0, 0], [pt, pb], [pl, pr], [0, 0]]), rotated, 1, 'valid')
  })
}

/**
 * Gradient of conv2d(x, filter, strides, pad) with respect to the filter, for dilation 1, NHWC:
 * a convolution in which the batch plays the channel role. x, padded and laid out
 * [Cin, Hp, Wp, N], convolved ('valid', dilation = the forward stride) with dy laid out
 * [Ho, Wo, N, Cout] is [Cin, kh, kw, Cout]: out[c, a, b, o] = sum over (h, w, n) of
 * xp[n, a + s*h, b + s*w, c] * dy[n, h, w, o], which is dW[a, b, c, o].
 */
export function conv2dFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: number | Pair,
  pad: Pad,
  dimRoundingMode?: 'floor' | 'round' | 'ceil'
): tf.Tensor4D {
  return tf.tidy(() => {
    const g = geometry(x.shape, filterShape, strides, pad, dimRoundingMode)
    const xt = tf.transpose(padInput(x, g), [3, 1, 2, 0]) as tf.Tensor4D // [Cin, Hp, Wp, N]
    const dyt = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D // [Ho, Wo, N, Cout]
    const r = tf.conv2d(xt, dyt, 1, 'valid', 'NHWC', [g.sh, g.sw]) // [Cin, kh, kw, Cout]
    return tf.transpose(r, [1, 2, 0, 3]) as tf.Tensor4D
  })
}

type KernelRun = (name: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap) => tf.TensorInfo

/**
 * A `Conv2DBackpropFilter` kernel for wasm: the same batch-as-channel convolution as
 * conv2dFilterGrad, composed from wasm's own kernel functions (PadV2, Slice, Transpose, Conv2D)
 * on the backend directly, as backends build their composite kernels, never from tf ops
 * (which would re-enter the engine from inside a kernel). It serves callers that bypass the
 * gradient registry, e.g. the custom gradient of `tf.fused.conv2d` with a linear activation.
 */
function conv2dBackpropFilterKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo }
  const a = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs
  const backend = args.backend as { disposeData: (dataId: object) => void }
  if ((a.dataFormat ?? 'NHWC') !== 'NHWC') throw new Error('Conv2DBackpropFilter (wasm): only NHWC is supported')
  const run: KernelRun = (name, inputs, attrs) => {
    const k = tf.getKernel(name, 'wasm')
    if (!k) throw new Error(`wasm kernel ${name} missing`)
    return k.kernelFunc({ inputs, backend: args.backend as tf.KernelBackend, attrs }) as tf.TensorInfo
  }
  const temps: tf.TensorInfo[] = []
  const keep = (t: tf.TensorInfo): tf.TensorInfo => (temps.push(t), t)
  try {
    const xShape = x.shape as [number, number, number, number]
    const g = geometry(xShape, a.filterShape, a.strides, a.pad, a.dimRoundingMode)
    const [n, h, w, c] = xShape
    const bottom = g.sh * (g.ho - 1) + g.kh - h - g.top
    const right = g.sw * (g.wo - 1) + g.kw - w - g.left
    let xp = x
    if (g.top || g.left || bottom || right) {
      const paddings = [[0, 0], [g.top, Math.max(bottom, 0)], [g.left, Math.max(right, 0)], [0, 0]]
      xp = keep(run('PadV2', { x }, { paddings, constantValue: 0 }))
      if (bottom < 0 || right < 0) {
        xp = keep(run('Slice', { x: xp }, { begin: [0, 0, 0, 0], size: [n, g.top + h + bottom, g.left + w + right, c] }))
      }
    }
    const xt = keep(run('Transpose', { x: xp }, { perm: [3, 1, 2, 0] }))
    const dyt = keep(run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] }))
    const r = keep(run('Conv2D', { x: xt, filter: dyt }, { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [g.sh, g.sw] }))
    return run('Transpose', { x: r }, { perm: [1, 2, 0, 3] })
  } finally {
    for (const t of temps) if (t !== x) backend.disposeData(t.dataId)
  }
}

function conv2dGradConfig(state: Installed): tf.GradConfig {
  return {
    kernelName: tf.Conv2D,
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const a = attrs as unknown as tf.Conv2DAttrs
      const dataFormat = a.dataFormat ?? 'NHWC'
      if (!state.backends.has(tf.getBackend()) || dataFormat !== 'NHWC' || !isOne(a.dilations ?? 1) || Array.isArray(dy)) {
        // Other backends; NCHW (which wasm's Conv2D rejects anyway); dilations (the stock
        // gradient rejects them with its own message).
        return state.stock.gradFunc(dy, saved, attrs)
      }
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D]
      const dy4 = dy as tf.Tensor4D
      return {
        x: () => conv2dInputGrad(x.shape, dy4, filter, a.strides, a.pad, a.dimRoundingMode),
        filter: () => conv2dFilterGrad(x, dy4, filter.shape, a.strides, a.pad, a.dimRoundingMode)
      }
    }
  }
}

/**
 * Installs the wasm-friendly Conv2D gradient (idempotent; a second call only updates the
 * backend list). Call once per process, before training; returns a function that puts the
 * stock gradient back.
 */
export function installWasmConvGradients(options: WasmConvGradientsOptions = {}): () => void {
  const backends = new Set(options.backends ?? ['wasm'])
  if (installed) {
    installed.backends = backends
    return uninstallWasmConvGradients
  }
  const stock = tf.getGradient(tf.Conv2D)
  if (!stock) throw new Error('tfjs-core has no Conv2D gradient registered; import @tensorflow/tfjs first')
  const ownsKernel = !tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')
  if (ownsKernel) {
    tf.registerKernel({ kernelName: tf.Conv2DBackpropFilter, backendName: 'wasm', kernelFunc: conv2dBackpropFilterKernel as tf.KernelFunc })
  }
  installed = { stock, backends, ownsKernel }
  tf.registerGradient(conv2dGradConfig(installed))
  return uninstallWasmConvGradients
}

/** Restores the stock Conv2D gradient. */
export function uninstallWasmConvGradients(): void {
  if (!installed) return
  tf.registerGradient(installed.stock)
  if (installed.ownsKernel) tf.unregisterKernel(tf.Conv2DBackpropFilter, 'wasm')
  installed = null
}

export function wasmConvGradientsInstalled(): boolean {
  return installed !== null
}
