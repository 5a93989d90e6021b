/**
 * Names only, no schemas: the sandboxed preload imports this without pulling zod in.
 * `api.ts` checks at compile time that its methods are exactly these.
 */
export const METHOD_NAMES = ['system.info'] as const

export type MethodNameList = (typeof METHOD_NAMES)[number]

export function methodChannel(method: MethodNameList): string {
  return `studio:call:${method}`
}

export const EVENT_CHANNEL = 'studio:event'
