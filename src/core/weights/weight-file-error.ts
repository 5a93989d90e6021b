import { basename } from 'node:path'

/**
 * An error about a weight file. The message starts with the file's base name (and names the
 * tensor where one is at fault); the full path and the tensor are kept as fields for the UI.
 */
export class WeightFileError extends Error {
  override readonly name = 'WeightFileError'

  constructor(
    readonly file: string,
    detail: string,
    readonly tensor?: string
  ) {
    super(`${basename(file) || file}: ${detail}`)
  }
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`
}
