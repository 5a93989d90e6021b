/**
 * A sharing Identity (clone) kernel for the TensorFlow.js wasm backend.
 *
 * The engine clones every tensor a gradient needs when it records an op on the tape
 * (`saveTensorsForBackwardMode`: `keep(clone(t))`), and `tf.customGrad`'s `save` does the same.
 * The cpu backend's Identity shares the data (`incRef`); wasm's stock Identity copies it, so on
 * wasm every conv input, filter, pre-activation and relu input the backward pass needs exists
 * twice while the step runs: on VGG16 at 224 that is gigabytes, and a memcpy each. Tensors are
 * never written in place (wasm's own Reshape shares data the same way), so sharing is safe.
 */
import * as tf from '@tensorflow/tfjs'

interface WasmBackend {
  incRef(dataId: object): void
}

let stock: tf.KernelConfig | null = null

function identity(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo }
  ;(args.backend as WasmBackend).incRef(x.dataId)
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype }
}

/** Replaces wasm's Identity kernel with one that shares data (idempotent). */
export function installSharingIdentity(): void {
  if (stock !== null) return
  const current = tf.getKernel(tf.Identity, 'wasm')
  if (current === undefined) throw new Error('the wasm backend has no Identity kernel: import @tensorflow/tfjs-backend-wasm first')
  stock = current
  tf.unregisterKernel(tf.Identity, 'wasm')
  tf.registerKernel({ kernelName: tf.Identity, backendName: 'wasm', kernelFunc: identity as unknown as tf.KernelFunc })
}

export function uninstallSharingIdentity(): void {
  if (stock === null) return
  tf.unregisterKernel(tf.Identity, 'wasm')
  tf.registerKernel(stock)
  stock = null
}
