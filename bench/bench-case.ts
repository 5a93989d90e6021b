/** One benchmark case: a name scripts can find, and a run that measures one thing. */
export interface BenchResult {
  case: string
  backend: string
  /** The headline number, where the case is about images. */
  imagesPerSec?: number
  /** Other measurements, named with their unit (e.g. `medianMs`, `rowsPerSec`). */
  [measure: string]: number | string | boolean | undefined
}

export interface BenchCase {
  name: string
  description: string
  /** The target this case checks, in words, and as a predicate over its result. */
  target?: { text: string; met: (result: BenchResult) => boolean }
  run(): Promise<BenchResult>
}
