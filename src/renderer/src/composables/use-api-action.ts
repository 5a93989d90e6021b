import { useMessage } from 'naive-ui'
import { errorMessage } from '../util/format'

export interface ApiActionOptions<T> {
  /** Shown when the action succeeded; a function gets the result. */
  success?: string | ((result: T) => string | null)
}

/**
 * Runs a call the user started and shows what went wrong where they are: the backend's message
 * names the field at fault. Resolves to undefined when the call failed (the error is shown).
 * Call in setup: it needs the message provider.
 */
export function useApiAction() {
  const message = useMessage()
  return async function run<T>(action: () => Promise<T>, options: ApiActionOptions<T> = {}): Promise<T | undefined> {
    try {
      const result = await action()
      const text = typeof options.success === 'function' ? options.success(result) : options.success
      if (text) message.success(text)
      return result
    } catch (error) {
      message.error(errorMessage(error), { closable: true, duration: 8000 })
      return undefined
    }
  }
}
