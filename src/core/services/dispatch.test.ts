import { describe, it, expect, vi } from 'vitest'
import { z } from 'zod'
import { dispatch, validateCall, type ServiceHandlers } from './dispatch'
import { methods } from '../../shared/api'
import { ApiError } from '../../shared/errors'

function handlersWithSpy() {
  const info = vi.fn(async () => ({ app: { name: 'x', version: '1' } }))
  return { handlers: { 'system.info': info } as unknown as ServiceHandlers, info }
}

describe('contract validation', () => {
  it('passes a well-formed call to its service with the parsed input', async () => {
    const { handlers, info } = handlersWithSpy()
    const outcome = await dispatch(handlers, 'system.info', undefined)
    expect(outcome).toEqual({ ok: true, result: { app: { name: 'x', version: '1' } } })
    expect(info).toHaveBeenCalledWith({})
  })

  it('refuses an unknown field, names it, and never reaches the service', async () => {
    const { handlers, info } = handlersWithSpy()
    const outcome = await dispatch(handlers, 'system.info', { verbose: true })
    expect(outcome.ok).toBe(false)
    if (outcome.ok) return
    expect(outcome.error.code).toBe('invalid_input')
    expect(outcome.error.fields).toEqual([{ path: 'verbose', message: 'unknown field' }])
    expect(outcome.error.message).toContain('system.info')
    expect(info).not.toHaveBeenCalled()
  })

  it('refuses input of the wrong type', async () => {
    const { handlers, info } = handlersWithSpy()
    const outcome = await dispatch(handlers, 'system.info', 'all of it')
    expect(outcome).toMatchObject({ ok: false, error: { code: 'invalid_input' } })
    expect(info).not.toHaveBeenCalled()
  })

  it('refuses a method that is not in the contract, without looking it up on the handlers', async () => {
    const { handlers } = handlersWithSpy()
    for (const name of ['system.shutdown', 'constructor', '__proto__', 42]) {
      const outcome = await dispatch(handlers, name, {})
      expect(outcome).toMatchObject({ ok: false, error: { code: 'unknown_method' } })
    }
  })

  it('names nested fields by their dotted path', () => {
    const schema = z.object({ run: z.object({ epochs: z.number().int().min(1) }) }).strict()
    const parsed = schema.safeParse({ run: { epochs: 0 } })
    expect(parsed.success).toBe(false)
    // The same formatting path validateCall uses, on a schema with depth.
    const original = methods['system.info'].input
    ;(methods as Record<string, { input: z.ZodType }>)['system.info'].input = schema
    try {
      expect(() => validateCall('system.info', { run: { epochs: 0 } })).toThrow(/run\.epochs: /)
      try {
        validateCall('system.info', { run: { epochs: 0 } })
      } catch (error) {
        expect(error).toBeInstanceOf(ApiError)
        expect((error as ApiError).fields?.[0].path).toBe('run.epochs')
      }
    } finally {
      ;(methods as Record<string, { input: z.ZodType }>)['system.info'].input = original
    }
  })

  it('turns a failing service into an error outcome instead of throwing', async () => {
    const handlers = { 'system.info': async () => Promise.reject(new Error('disk on fire')) } as unknown as ServiceHandlers
    expect(await dispatch(handlers, 'system.info', {})).toEqual({ ok: false, error: { code: 'internal', message: 'disk on fire' } })
  })
})
