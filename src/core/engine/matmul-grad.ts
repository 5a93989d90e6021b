/**
 * A faster BatchMatMul gradient on the TensorFlow.js wasm backend.
 *
 * The stock gradient of `op(a) · op(b)` is two more products with transposed operands, e.g.
 * `dy · bᵀ` and `aᵀ · dy` for a dense layer. Wasm runs those through slow paths: with either
 * transpose flag set it does not use XNNPACK's GEMM (measured on fc1 of VGG16 at 224, x 8x25088,
 * 512 units: 125 ms for the kernel gradient and 110 ms for the input gradient; at 4096 units
 * 1.5 s and 0.6 s), and XNNPACK itself re-packs its second operand whenever that tensor is new.
 * So each product here is computed without transpose flags, after transposing explicitly only
 * what is cheap to transpose, and in the orientation whose second operand is the smaller one
 * (`p · q` directly, or as `(qᵀ · pᵀ)ᵀ`): the same two gradients then take 7 ms each at 512 units
 * and 85 / 52 ms at 4096. The sums are the same, in another order.
 *
 * Like the Conv2D gradient (conv-grad.ts), the replacement is registered globally by kernel
 * name, checks the active backend each time it runs and hands every other backend, and batch
 * dimensions that differ (which the stock gradient rejects), to the stock gradient it replaced.
 */
import * as tf from '@tensorflow/tfjs'

interface Installed {
  stock: tf.GradConfig
  backends: Set<string>
}

let installed: Installed | null = null

/** `t` with its last two axes swapped. */
function swapLast(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i)
  perm[t.rank - 2] = t.rank - 1
  perm[t.rank - 1] = t.rank - 2
  return tf.transpose(t, perm)
}

const oriented = (t: tf.Tensor, transpose: boolean): tf.Tensor => (transpose ? swapLast(t) : t)

/**
 * `op(p) · op(q)` (op: transpose when the flag is set) by a flag-free matMul. Direct: transpose
 * what is flagged, then `op(p) · op(q)`. Swapped: `(op(q)ᵀ · op(p)ᵀ)ᵀ`, where the flags cancel
 * the inner transposes and only the product is transposed. The cost counted is the elements
 * transposed plus the second operand (what XNNPACK packs).
 */
export function flagFreeProduct(p: tf.Tensor, q: tf.Tensor, transposeP: boolean, transposeQ: boolean): tf.Tensor {
  return tf.tidy(() => {
    const rows = transposeP ? p.shape[p.rank - 1] : p.shape[p.rank - 2]
    const cols = transposeQ ? q.shape[q.rank - 2] : q.shape[q.rank - 1]
    const batch = p.size / (p.shape[p.rank - 1] * p.shape[p.rank - 2])
    const direct = (transposeP ? p.size : 0) + (transposeQ ? q.size : 0) + q.size
    const swapped = (transposeQ ? 0 : q.size) + (transposeP ? 0 : p.size) + p.size + batch * rows * cols
    if (direct <= swapped) return tf.matMul(oriented(p, transposeP), oriented(q, transposeQ))
    return swapLast(tf.matMul(oriented(q, !transposeQ), oriented(p, !transposeP)))
  })
}

function sameBatch(a: tf.Tensor, b: tf.Tensor): boolean {
  return a.rank === b.rank && a.shape.slice(0, -2).every((d, i) => d === b.shape[i])
}

function matMulGradConfig(state: Installed): tf.GradConfig {
  return {
    kernelName: tf.BatchMatMul,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved
      if (!state.backends.has(tf.getBackend()) || Array.isArray(dy) || !sameBatch(a, b)) return state.stock.gradFunc(dy, saved, attrs)
      const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs
      const d = dy as tf.Tensor
      // With y = op(a) · op(b): d op(a) = dy · op(b)ᵀ and d op(b) = op(a)ᵀ · dy, then undo op.
      return {
        a: () => (transposeA ? flagFreeProduct(b, d, transposeB, true) : flagFreeProduct(d, b, false, !transposeB)),
        b: () => (transposeB ? flagFreeProduct(d, a, true, transposeA) : flagFreeProduct(a, d, !transposeA, false))
      }
    }
  }
}

/**
 * Installs the flag-free BatchMatMul gradient (idempotent; a second call only updates the backend
 * list). Returns a function that puts the stock gradient back.
 */
export function installWasmMatMulGradient(options: { backends?: readonly string[] } = {}): () => void {
  const backends = new Set(options.backends ?? ['wasm'])
  if (installed) {
    installed.backends = backends
    return uninstallWasmMatMulGradient
  }
  const stock = tf.getGradient(tf.BatchMatMul)
  if (!stock) throw new Error('tfjs-core has no BatchMatMul gradient registered; import @tensorflow/tfjs first')
  installed = { stock, backends }
  tf.registerGradient(matMulGradConfig(installed))
  return uninstallWasmMatMulGradient
}

export function uninstallWasmMatMulGradient(): void {
  if (!installed) return
  tf.registerGradient(installed.stock)
  installed = null
}
