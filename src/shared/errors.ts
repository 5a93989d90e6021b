/** Errors as they cross the contract: a code the UI can branch on, a message a person can read. */
export type ApiErrorCode = 'invalid_input' | 'unknown_method' | 'not_found' | 'conflict' | 'unauthorized' | 'internal'

export interface ApiErrorShape {
  code: ApiErrorCode
  message: string
  /** For invalid_input: one entry per offending field, as a dotted path. */
  fields?: { path: string; message: string }[]
}

export class ApiError extends Error implements ApiErrorShape {
  readonly code: ApiErrorCode
  readonly fields?: { path: string; message: string }[]

  constructor(shape: ApiErrorShape) {
    super(shape.message)
    this.name = 'ApiError'
    this.code = shape.code
    this.fields = shape.fields
  }

  toJSON(): ApiErrorShape {
    return { code: this.code, message: this.message, fields: this.fields }
  }

  static from(value: unknown): ApiError {
    if (value instanceof ApiError) return value
    if (isApiErrorShape(value)) return new ApiError(value)
    return new ApiError({ code: 'internal', message: value instanceof Error ? value.message : String(value) })
  }
}

export function isApiErrorShape(value: unknown): value is ApiErrorShape {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as ApiErrorShape).code === 'string' &&
    typeof (value as ApiErrorShape).message === 'string'
  )
}

/** What a call returns across a transport: IPC and JSON both lose Error subclasses, so errors travel as data. */
export type CallOutcome<R = unknown> = { ok: true; result: R } | { ok: false; error: ApiErrorShape }
