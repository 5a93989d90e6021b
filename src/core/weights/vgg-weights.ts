/**
 * The canonical in-memory form of VGG weights, whatever file they came from.
 *
 * Layer names follow Keras: `block{b}_conv{n}` for convolutions, `fc1`, `fc2` and `predictions`
 * for the classifier. Layouts are TensorFlow's: conv kernels HWIO `[kh, kw, in, out]`, dense
 * kernels `[in, out]`, and `fc1` reads the last feature map flattened in HWC order (as a
 * `tf.layers.flatten` of an NHWC tensor does).
 */
export interface LayerWeights {
  kernel: Float32Array
  kernelShape: number[]
  bias: Float32Array
}

export type VggWeights = Map<string, LayerWeights>

/** How input pixels must be prepared for a set of weights; recorded with every run. */
export type Preprocessing =
  | { kind: 'torchvision'; channelOrder: 'RGB'; scale: number; mean: [number, number, number]; std: [number, number, number] }
  | { kind: 'caffe'; channelOrder: 'BGR'; mean: [number, number, number] }

export const TORCHVISION_PREPROCESSING: Preprocessing = {
  kind: 'torchvision',
  channelOrder: 'RGB',
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225]
}

export const CAFFE_PREPROCESSING: Preprocessing = {
  kind: 'caffe',
  channelOrder: 'BGR',
  mean: [103.939, 116.779, 123.68]
}
