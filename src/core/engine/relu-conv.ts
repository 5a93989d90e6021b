/**
 * VGG's conv layers in a training step as one op: `relu(conv2d(x, W) + b)`.
 *
 * Recorded op by op (what a tf.layers Conv2D does on the tape), a conv layer leaves three
 * full-size tensors alive until the backward pass: the conv output (saved by the bias add), the
 * pre-activation (saved by the relu) and the output (the next conv's input). At 224 that is
 * most of the memory of a step; VGG16 at batch 8 training every layer then needs more than the
 * 4 GiB wasm heap. As one op, only `y` is kept (the relu's gradient is `dy` where `y > 0`),
 * the forward pass is XNNPACK's fused conv with bias and clamp, and the backward pass computes
 * only the gradients the tape asks for: no input gradient behind a frozen prefix or the image.
 *
 * The op goes through the engine's own custom-gradient entry (`runKernelFunc`, what
 * `tf.customGrad` calls) because `tf.customGrad` computes every input's gradient eagerly.
 */
import * as tf from '@tensorflow/tfjs'
import { channelSum, isWeightNormLayer, normalizedKernel } from '../model/weight-norm'
import { conv2dFilterGrad, conv2dInputGrad } from './conv-grad'

type Pad = 'same' | 'valid'
type Strides = [number, number]

interface CustomKernelInvocation {
  forwardFunc: (backend: unknown, save: (tensors: tf.Tensor[]) => void) => tf.Tensor
  backwardsFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => Record<string, () => tf.Tensor>
  inputs: tf.NamedTensorMap
}

function runCustomKernel(invocation: CustomKernelInvocation): tf.Tensor {
  return (tf.engine() as unknown as { runKernelFunc: (i: CustomKernelInvocation) => tf.Tensor }).runKernelFunc(invocation)
}

/** `dy` where the relu passed its input (`y > 0`), else 0. */
function throughRelu(dy: tf.Tensor, y: tf.Tensor): tf.Tensor4D {
  return tf.tidy(() => tf.mul(dy, tf.step(y)) as tf.Tensor4D)
}

/** `relu(conv2d(x, filter, strides, pad) + bias)`, NHWC, dilation 1, keeping only its output for the backward pass. */
export function reluConv2d(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D, strides: Strides, pad: Pad): tf.Tensor4D {
  const attrs = { strides, pad, dataFormat: 'NHWC', dilations: [1, 1], activation: 'relu' }
  return runCustomKernel({
    inputs: { x, filter, bias },
    forwardFunc: (_backend, save) => {
      const y = tf.engine().runKernel(tf.FusedConv2D, { x, filter, bias }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D
      save([x, filter, y])
      return y
    },
    backwardsFunc: (dy, [xs, w, y]) => {
      // Each gradient the tape needs recomputes the masked dy (two cheap passes) rather than
      // keeping it: a kept tensor would live until the end of the whole backward pass.
      const fast = tf.getBackend() === 'wasm'
      const x4 = xs as tf.Tensor4D
      const w4 = w as tf.Tensor4D
      return {
        x: () => {
          const dz = throughRelu(dy, y)
          return fast ? conv2dInputGrad(x4.shape, dz, w4, strides, pad) : tf.conv2dTranspose(dz, w4, x4.shape, strides, pad)
        },
        filter: () => {
          const dz = throughRelu(dy, y)
          if (fast) return conv2dFilterGrad(x4, dz, w4.shape, strides, pad)
          return tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: x4, dy: dz }, { strides, pad, dataFormat: 'NHWC', filterShape: w4.shape } as unknown as tf.NamedAttrMap) as tf.Tensor
        },
        bias: () => channelSum(throughRelu(dy, y))
      }
    }
  }) as tf.Tensor4D
}

interface ConvParts {
  kernel: () => tf.Tensor4D
  bias: tf.Tensor1D
  strides: Strides
  pad: Pad
}

function pairOf(value: unknown): Strides | null {
  const p = typeof value === 'number' ? [value, value] : value
  return Array.isArray(p) && p.length === 2 && p.every((n) => typeof n === 'number') ? [p[0], p[1]] : null
}

/** What `reluConv2d` needs from a conv layer with a relu and a bias, or null for any other layer. */
function convParts(layer: tf.layers.Layer, x: tf.Tensor): ConvParts | null {
  if (isWeightNormLayer(layer)) {
    const bias = layer.biasParam
    if (layer.getClassName() !== 'WeightNormConv2D' || layer.activation !== 'relu' || bias === null || layer.scalesOutput(x)) return null
    const conv = layer as unknown as { strides: Strides; padding: Pad }
    return { kernel: () => normalizedKernel(layer.vParam.read(), layer.gParam.read()) as tf.Tensor4D, bias: bias.read() as tf.Tensor1D, strides: conv.strides, pad: conv.padding }
  }
  if (layer.getClassName() !== 'Conv2D') return null
  const c = layer.getConfig()
  const strides = pairOf(c.strides)
  const dilation = pairOf(c.dilationRate ?? 1)
  const pad = c.padding
  if (c.activation !== 'relu' || c.useBias !== true || c.dataFormat !== 'channelsLast' || strides === null || dilation?.join() !== '1,1' || (pad !== 'same' && pad !== 'valid')) return null
  const [kernel, bias] = layer.weights
  return { kernel: () => kernel.read() as tf.Tensor4D, bias: bias.read() as tf.Tensor1D, strides, pad }
}

/** A layer applied in a training step: VGG's relu convs through `reluConv2d`, other layers as they are. */
export function applyForTraining(layer: tf.layers.Layer, x: tf.Tensor): tf.Tensor {
  const parts = x.rank === 4 ? convParts(layer, x) : null
  if (parts === null) return layer.apply(x, { training: true }) as tf.Tensor
  return reluConv2d(x as tf.Tensor4D, parts.kernel(), parts.bias, parts.strides, parts.pad)
}

/** `layers` applied in order in a training step (on the gradient tape). */
export function applyLayersForTraining(layers: readonly tf.layers.Layer[], x: tf.Tensor): tf.Tensor {
  return layers.reduce((y, layer) => applyForTraining(layer, y), x)
}
