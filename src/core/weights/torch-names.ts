/**
 * Tensor names of torchvision and timm VGG state dicts (configs A/B/D/E, without batch norm),
 * mapped to the canonical Keras layer names, and the canonical -> torch direction for export.
 */
import { hwcFc1ToTorch, hwioToOihw, inOutToOutIn } from './layouts'
import type { VggWeights } from './vgg-weights'
import { VGG_BLOCK_CONVS, convLayerName, vggSpec, type VggDepth, type VggSpecOptions } from './vgg-spec'

export type TorchFlavor = 'torchvision' | 'timm'

export interface TorchLayerNames {
  /** Canonical (Keras) layer name. */
  layer: string
  weight: string
  bias: string
}

/** Indices of the convolutions inside `features` (a Sequential of conv, ReLU, ..., pool). */
export function torchFeatureConvIndices(depth: VggDepth): number[] {
  const indices: number[] = []
  let i = 0
  for (const count of VGG_BLOCK_CONVS[depth]) {
    for (let n = 0; n < count; n++) {
      indices.push(i)
      i += 2
    }
    i += 1
  }
  return indices
}

function convNames(depth: VggDepth): TorchLayerNames[] {
  const indices = torchFeatureConvIndices(depth)
  const names: TorchLayerNames[] = []
  let k = 0
  VGG_BLOCK_CONVS[depth].forEach((count, b) => {
    for (let n = 1; n <= count; n++) {
      const i = indices[k++]
      names.push({ layer: convLayerName(b + 1, n), weight: `features.${i}.weight`, bias: `features.${i}.bias` })
    }
  })
  return names
}

const FC_NAMES: Record<TorchFlavor, readonly [string, string][]> = {
  torchvision: [
    ['fc1', 'classifier.0'],
    ['fc2', 'classifier.3'],
    ['predictions', 'classifier.6']
  ],
  timm: [
    ['fc1', 'pre_logits.fc1'],
    ['fc2', 'pre_logits.fc2'],
    ['predictions', 'head.fc']
  ]
}

/** Convolutions in order, then fc1, fc2 and predictions. */
export function torchNameMap(flavor: TorchFlavor, depth: VggDepth): TorchLayerNames[] {
  return [
    ...convNames(depth),
    ...FC_NAMES[flavor].map(([layer, module]) => ({ layer, weight: `${module}.weight`, bias: `${module}.bias` }))
  ]
}

const BATCH_NORM_SUFFIXES = ['.running_mean', '.running_var', '.num_batches_tracked']

/** Tensors that only a batch-norm VGG (vgg16_bn and the like) has. */
export function findBatchNormTensors(names: Iterable<string>): string[] {
  return [...names].filter((n) => BATCH_NORM_SUFFIXES.some((s) => n.endsWith(s)))
}

/** timm if it has timm's classifier modules, torchvision if it has torchvision's or only `features`. */
export function detectTorchFlavor(names: Iterable<string>): TorchFlavor | undefined {
  const list = [...names]
  if (list.some((n) => n.startsWith('pre_logits.') || n.startsWith('head.'))) return 'timm'
  if (list.some((n) => n.startsWith('classifier.') || /^features\.\d+\./.test(n))) return 'torchvision'
  return undefined
}

export interface TorchTensor {
  shape: number[]
  data: Float32Array
}

/**
 * Canonical weights -> a torchvision or timm state dict (float32, torch layouts), e.g. to write
 * with writeSafetensors. Layers absent from `weights` (a no-top set) are left out.
 */
export function vggWeightsToTorch(weights: VggWeights, flavor: TorchFlavor, options: VggSpecOptions): Map<string, TorchTensor> {
  const spec = vggSpec(options)
  const out = new Map<string, TorchTensor>()
  for (const names of torchNameMap(flavor, spec.depth)) {
    const w = weights.get(names.layer)
    if (!w) continue
    let shape: number[]
    let data: Float32Array
    if (names.layer === 'fc1') {
      const [, outputs] = w.kernelShape
      const g = { outputs, channels: spec.lastChannels, height: spec.mapSize, width: spec.mapSize }
      data = hwcFc1ToTorch(w.kernel, g)
      shape = flavor === 'timm' ? [outputs, g.channels, g.height, g.width] : [outputs, g.channels * g.height * g.width]
    } else if (w.kernelShape.length === 4) {
      const [h, wd, i, o] = w.kernelShape
      data = hwioToOihw(w.kernel, [h, wd, i, o])
      shape = [o, i, h, wd]
    } else {
      const [i, o] = w.kernelShape
      data = inOutToOutIn(w.kernel, [i, o])
      shape = flavor === 'timm' && names.layer === 'fc2' ? [o, i, 1, 1] : [o, i]
    }
    out.set(names.weight, { shape, data })
    out.set(names.bias, { shape: [w.bias.length], data: w.bias })
  }
  return out
}
