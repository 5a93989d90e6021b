import type { z } from 'zod'
import { isMethodName, methods, type MethodName, type MethodResult, type ParsedInput } from '../../shared/api'
import { ApiError, type CallOutcome } from '../../shared/errors'

/** One implementation per contract method; inputs arrive already validated. */
export type ServiceHandlers = {
  [M in MethodName]: (input: ParsedInput<M>) => Promise<MethodResult<M>>
}

/** Checks a raw call against the contract and names every offending field. Throws ApiError. */
export function validateCall<M extends MethodName>(method: unknown, input: unknown): { method: M; input: ParsedInput<M> } {
  if (!isMethodName(method)) {
    throw new ApiError({ code: 'unknown_method', message: `Unknown method ${JSON.stringify(method)}` })
  }
  const parsed = methods[method].input.safeParse(input)
  if (!parsed.success) {
    const fields = parsed.error.issues.flatMap(issueFields)
    const detail = fields.map((f) => (f.path ? `${f.path}: ${f.message}` : f.message)).join('; ')
    throw new ApiError({ code: 'invalid_input', message: `Invalid input for ${method}: ${detail}`, fields })
  }
  return { method: method as M, input: parsed.data as ParsedInput<M> }
}

function issueFields(issue: z.core.$ZodIssue): { path: string; message: string }[] {
  const base = issue.path.map(String).join('.')
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ path: base ? `${base}.${key}` : key, message: 'unknown field' }))
  }
  return [{ path: base || '(input)', message: issue.message }]
}

/** The single entry every transport goes through: validate, run, and turn any failure into data. */
export async function dispatch(handlers: ServiceHandlers, method: unknown, input: unknown): Promise<CallOutcome> {
  try {
    const call = validateCall(method, input)
    const handler = handlers[call.method] as (input: unknown) => Promise<unknown>
    return { ok: true, result: await handler(call.input) }
  } catch (error) {
    return { ok: false, error: ApiError.from(error).toJSON() }
  }
}
