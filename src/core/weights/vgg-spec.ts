/**
 * Shapes of the VGG configurations A/B/D/E (VGG11/13/16/19), in the canonical (Keras) layout.
 *
 * `widthDivisor` scales every channel count and the hidden fully connected width down; it exists
 * so tests can write complete weight files in milliseconds. Real weights use the default of 1.
 */

import { PLAN_BLOCK_CONVS, PLAN_DEPTHS, type PlanDepth } from '../../shared/layer-plan-schema'

export type VggDepth = PlanDepth

export const VGG_DEPTHS: readonly VggDepth[] = PLAN_DEPTHS

/** Convolutions per block for each configuration (the table lives in shared, for the UI too). */
export const VGG_BLOCK_CONVS: Readonly<Record<VggDepth, readonly number[]>> = PLAN_BLOCK_CONVS

export const VGG_BLOCK_WIDTHS: readonly number[] = [64, 128, 256, 512, 512]
export const VGG_FC_UNITS = 4096
/** Side of the last feature map for the 224x224 input every pretrained VGG was trained on. */
export const VGG_FINAL_MAP_SIZE = 7
export const VGG_INPUT_CHANNELS = 3

export interface VggSpecOptions {
  depth: VggDepth
  widthDivisor?: number
}

export interface VggConvSpec {
  name: string
  block: number
  indexInBlock: number
  inChannels: number
  outChannels: number
  /** HWIO */
  kernelShape: [number, number, number, number]
}

export interface VggSpec {
  depth: VggDepth
  widthDivisor: number
  convs: VggConvSpec[]
  /** Channels of the last feature map (512 for real VGG). */
  lastChannels: number
  mapSize: number
  /** Width of fc1 and fc2 (4096 for real VGG). */
  fcUnits: number
  /** Rows of the fc1 kernel: mapSize * mapSize * lastChannels, in HWC order. */
  fc1Inputs: number
}

export const FC_LAYER_NAMES = ['fc1', 'fc2', 'predictions'] as const

export function isVggDepth(value: unknown): value is VggDepth {
  return value === 11 || value === 13 || value === 16 || value === 19
}

export function convLayerName(block: number, indexInBlock: number): string {
  return `block${block}_conv${indexInBlock}`
}

export function vggSpec(options: VggSpecOptions): VggSpec {
  const { depth } = options
  const widthDivisor = options.widthDivisor ?? 1
  if (!isVggDepth(depth)) throw new Error(`unsupported VGG depth ${String(depth)}: expected 11, 13, 16 or 19`)
  if (!Number.isInteger(widthDivisor) || widthDivisor < 1 || VGG_BLOCK_WIDTHS[0] % widthDivisor !== 0) {
    throw new Error(`widthDivisor must be a positive integer dividing 64, got ${widthDivisor}`)
  }
  const convs: VggConvSpec[] = []
  let inChannels = VGG_INPUT_CHANNELS
  VGG_BLOCK_CONVS[depth].forEach((count, b) => {
    const outChannels = VGG_BLOCK_WIDTHS[b] / widthDivisor
    for (let n = 1; n <= count; n++) {
      convs.push({
        name: convLayerName(b + 1, n),
        block: b + 1,
        indexInBlock: n,
        inChannels,
        outChannels,
        kernelShape: [3, 3, inChannels, outChannels]
      })
      inChannels = outChannels
    }
  })
  const mapSize = VGG_FINAL_MAP_SIZE
  return {
    depth,
    widthDivisor,
    convs,
    lastChannels: inChannels,
    mapSize,
    fcUnits: VGG_FC_UNITS / widthDivisor,
    fc1Inputs: mapSize * mapSize * inChannels
  }
}

/** The depth whose configuration has `convCount` convolutions, if any. */
export function depthFromConvCount(convCount: number): VggDepth | undefined {
  return VGG_DEPTHS.find((d) => VGG_BLOCK_CONVS[d].reduce((a, b) => a + b, 0) === convCount)
}

/** Canonical kernel shapes of the classifier; `numClasses` only affects `predictions`. */
export function fcKernelShapes(spec: VggSpec, numClasses: number): Record<(typeof FC_LAYER_NAMES)[number], [number, number]> {
  return {
    fc1: [spec.fc1Inputs, spec.fcUnits],
    fc2: [spec.fcUnits, spec.fcUnits],
    predictions: [spec.fcUnits, numClasses]
  }
}
