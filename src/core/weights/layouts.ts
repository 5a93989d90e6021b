/**
 * Layout conversions between PyTorch and TensorFlow weight layouts, on plain typed arrays.
 *
 * Every conversion here has the form "move axis 0 (the output axis) last and permute the other
 * axes": OIHW -> HWIO, dense [out,in] -> [in,out], and torch's first FC layer [out, C*H*W] ->
 * [H*W*C, out] (the same permutation as OIHW -> HWIO with I = C). So they share one tiled
 * kernel, which matters for fc1 (102.8M values for VGG16).
 */

export type Shape4 = readonly [number, number, number, number]

export interface Fc1Geometry {
  outputs: number
  channels: number
  height: number
  width: number
}

// 32x32 float tiles: 4 KiB read and 4 KiB written per tile, comfortably inside L1.
const TILE = 32

function checkLength(src: Float32Array, shape: readonly number[], what: string): number {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${what}: invalid shape [${shape.join(',')}]`)
  }
  const size = shape.reduce((a, b) => a * b, 1)
  if (src.length !== size) {
    throw new Error(`${what}: array has ${src.length} values, shape [${shape.join(',')}] needs ${size}`)
  }
  return size
}

/**
 * For a source of shape [O, A, B, C] (row-major, K = A*B*C columns), the destination row of
 * column k when the destination is [B, C, A, O], i.e. permutation (2,3,1,0).
 */
function oihwColumnToHwioRow(a: number, b: number, c: number): Int32Array {
  const map = new Int32Array(a * b * c)
  let k = 0
  for (let i = 0; i < a; i++) {
    for (let h = 0; h < b; h++) {
      for (let w = 0; w < c; w++) map[k++] = (h * c + w) * a + i
    }
  }
  return map
}

/** dst[colToRow[k] * rows + o] = src[o * cols + k]: a transpose with the columns reordered. */
function transposeScatter(src: Float32Array, rows: number, cols: number, colToRow: Int32Array): Float32Array {
  const dst = new Float32Array(rows * cols)
  for (let o0 = 0; o0 < rows; o0 += TILE) {
    const o1 = Math.min(o0 + TILE, rows)
    for (let k0 = 0; k0 < cols; k0 += TILE) {
      const k1 = Math.min(k0 + TILE, cols)
      for (let k = k0; k < k1; k++) {
        const base = colToRow[k] * rows
        for (let o = o0; o < o1; o++) dst[base + o] = src[o * cols + k]
      }
    }
  }
  return dst
}

/** The inverse of transposeScatter: dst[o * cols + k] = src[colToRow[k] * rows + o]. */
function transposeGather(src: Float32Array, rows: number, cols: number, colToRow: Int32Array): Float32Array {
  const dst = new Float32Array(rows * cols)
  for (let o0 = 0; o0 < rows; o0 += TILE) {
    const o1 = Math.min(o0 + TILE, rows)
    for (let k0 = 0; k0 < cols; k0 += TILE) {
      const k1 = Math.min(k0 + TILE, cols)
      for (let o = o0; o < o1; o++) {
        const out = o * cols
        for (let k = k0; k < k1; k++) dst[out + k] = src[colToRow[k] * rows + o]
      }
    }
  }
  return dst
}

/** PyTorch conv kernel [out, in, kh, kw] -> TensorFlow [kh, kw, in, out]: transpose(2,3,1,0). */
export function oihwToHwio(src: Float32Array, oihw: Shape4): Float32Array {
  checkLength(src, oihw, 'oihwToHwio')
  const [o, i, h, w] = oihw
  return transposeScatter(src, o, i * h * w, oihwColumnToHwioRow(i, h, w))
}

/** TensorFlow conv kernel [kh, kw, in, out] -> PyTorch [out, in, kh, kw]: transpose(3,2,0,1). */
export function hwioToOihw(src: Float32Array, hwio: Shape4): Float32Array {
  checkLength(src, hwio, 'hwioToOihw')
  const [h, w, i, o] = hwio
  return transposeGather(src, o, i * h * w, oihwColumnToHwioRow(i, h, w))
}

/** Dense kernel [out, in] (torch Linear) -> [in, out] (Keras Dense). */
export function outInToInOut(src: Float32Array, shape: readonly [number, number]): Float32Array {
  const [o, i] = shape
  return oihwToHwio(src, [o, i, 1, 1])
}

/** Dense kernel [in, out] (Keras Dense) -> [out, in] (torch Linear). */
export function inOutToOutIn(src: Float32Array, shape: readonly [number, number]): Float32Array {
  const [i, o] = shape
  return hwioToOihw(src, [1, 1, i, o])
}

/**
 * torch's first FC kernel, [out, C*H*W] reading a CHW-flattened map (or timm's [out, C, H, W]
 * conv, the same bytes), -> [H*W*C, out] reading an HWC-flattened map. Equivalent to
 * `W.reshape(out,C,H,W).transpose(2,3,1,0).reshape(H*W*C, out)`.
 */
export function torchFc1ToHwc(src: Float32Array, g: Fc1Geometry): Float32Array {
  return oihwToHwio(src, [g.outputs, g.channels, g.height, g.width])
}

/** The inverse of torchFc1ToHwc: [H*W*C, out] -> [out, C*H*W] (torchvision classifier.0). */
export function hwcFc1ToTorch(src: Float32Array, g: Fc1Geometry): Float32Array {
  return hwioToOihw(src, [g.height, g.width, g.channels, g.outputs])
}

/** One feature map [C, H, W] -> [H, W, C]; for checking what an FC layer reads. */
export function chwToHwc(src: Float32Array, channels: number, height: number, width: number): Float32Array {
  checkLength(src, [channels, height, width], 'chwToHwc')
  const dst = new Float32Array(src.length)
  for (let c = 0; c < channels; c++) {
    for (let p = 0; p < height * width; p++) dst[p * channels + c] = src[c * height * width + p]
  }
  return dst
}
