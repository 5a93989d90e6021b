/**
 * The optimizer the trainer uses: SGD (momentum), Adam and AdamW with a learning-rate
 * multiplier per variable (per layer group of the plan).
 */
import * as tf from '@tensorflow/tfjs'
import type { OptimizerSpec } from './trainer-spec'

/** One trainable variable as the optimizer sees it. */
export interface OptimizedVariable {
  /** Stable name: `<layer>/<kernel|bias|v|g>`. */
  key: string
  layer: string
  variable: tf.Variable
  /** Learning-rate multiplier of its layer. */
  multiplier: number
  /** Weight decay applies: kernels and WN `v`, not biases or WN `g`. */
  decays: boolean
}

/**
 * SGD (momentum), Adam and AdamW with a per-variable learning-rate multiplier: each variable's
 * step is `learningRate * multiplier` times what the optimizer would do. (Scaling the step,
 * not the gradient: Adam divides the gradient's scale away, so a scaled gradient would change
 * nothing but the epsilon's weight.) Variables with multiplier 0 should not be given at all.
 *
 * - sgd: `g += wd * w` (decay variables), `buf = momentum * buf + g`, `w -= lr * buf` (PyTorch).
 * - adam: `g += wd * w`, then Adam with bias correction (Kingma & Ba).
 * - adamw: `w -= lr * wd * w` (decoupled, Loshchilov & Hutter), then Adam on the plain gradient.
 *
 * Its state (the slots and the step counter) is what checkpoints save.
 */
export class LayerwiseOptimizer {
  readonly kind: OptimizerSpec['kind']
  /** Updates applied so far (Adam's t). */
  step = 0
  private readonly slots = new Map<string, tf.Variable[]>()
  private readonly beta1: number
  private readonly beta2: number
  private readonly epsilon: number
  private readonly momentum: number
  private readonly weightDecay: number

  constructor(
    spec: OptimizerSpec,
    readonly variables: readonly OptimizedVariable[]
  ) {
    this.kind = spec.kind
    this.beta1 = spec.beta1 ?? 0.9
    this.beta2 = spec.beta2 ?? 0.999
    this.epsilon = spec.epsilon ?? 1e-8
    this.momentum = spec.momentum ?? 0
    this.weightDecay = spec.weightDecay ?? 0
    const slotNames = this.slotNames()
    for (const v of variables) {
      this.slots.set(
        v.key,
        slotNames.map(() => tf.tidy(() => tf.variable(tf.zeros(v.variable.shape), false)))
      )
    }
  }

  /** Names of the per-variable state: Adam's moments, SGD's momentum buffer. */
  slotNames(): string[] {
    if (this.kind === 'sgd') return this.momentum > 0 ? ['momentum'] : []
    return ['m', 'v']
  }

  /**
   * Applies one update with base learning rate `learningRate`; `grads` keyed by tf variable
   * name. Memory: every new value is computed in its own
   * `tidy` and assigned at once, so besides a variable, its slots and its gradient only a few
   * temporaries of its size are alive at a time (fc1 at 224 is 411 MB a copy; keeping every
   * temporary of a step would not fit the 4 GiB wasm heap).
   */
  applyGradients(grads: tf.NamedTensorMap, learningRate: number): void {
    this.applyEach((v) => {
      const grad = grads[v.variable.name]
      if (grad === undefined) throw new Error(`no gradient for ${v.key}`)
      return grad
    }, learningRate)
  }

  /**
   * The same with each variable's gradient made on demand (`gradientOf(variable, index)`, in
   * variable order): whatever it creates is disposed once that variable is updated.
   */
  applyEach(gradientOf: (v: OptimizedVariable, index: number) => tf.Tensor, learningRate: number): void {
    this.step++
    this.variables.forEach((v, i) => {
      tf.tidy(() => this.update(v, gradientOf(v, i), learningRate * v.multiplier))
    })
  }

  private update(v: OptimizedVariable, grad: tf.Tensor, lr: number): void {
    const t = this.step
    const w = v.variable
    const decay = v.decays ? this.weightDecay : 0
    const [s0, s1] = this.slots.get(v.key) ?? []
    const assign = (target: tf.Variable, value: () => tf.Tensor) => target.assign(tf.tidy(value))
    if (this.kind === 'sgd') {
      const g = decay > 0 ? tf.add(grad, tf.mul(w, decay)) : grad
      if (s0 !== undefined) assign(s0, () => tf.add(tf.mul(s0, this.momentum), g))
      assign(w, () => tf.sub(w, tf.mul(s0 ?? g, lr)))
      return
    }
    const g = this.kind === 'adam' && decay > 0 ? tf.add(grad, tf.mul(w, decay)) : grad
    assign(s0, () => tf.add(tf.mul(s0, this.beta1), tf.mul(g, 1 - this.beta1)))
    assign(s1, () => tf.add(tf.mul(s1, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)))
    const stepSize = (lr * Math.sqrt(1 - Math.pow(this.beta2, t))) / (1 - Math.pow(this.beta1, t))
    // PyTorch's form: lr * m_hat / (sqrt(v_hat) + eps) with eps scaled into the uncorrected v.
    const eps = this.epsilon * Math.sqrt(1 - Math.pow(this.beta2, t))
    const change = tf.tidy(() => tf.mul(tf.div(s0, tf.add(tf.sqrt(s1), eps)), stepSize))
    assign(w, () => tf.sub(this.kind === 'adamw' && decay > 0 ? tf.mul(w, 1 - lr * decay) : w, change))
  }

  /** Every slot as `<key>/<slot>` -> variable, for checkpoints. */
  stateVariables(): { name: string; variable: tf.Variable }[] {
    const names = this.slotNames()
    return this.variables.flatMap((v) => (this.slots.get(v.key) ?? []).map((variable, i) => ({ name: `${v.key}/${names[i]}`, variable })))
  }

  dispose(): void {
    for (const slots of this.slots.values()) tf.dispose(slots)
    this.slots.clear()
  }
}
