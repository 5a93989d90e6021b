import type { Page } from '@playwright/test'
import type { MethodInput, MethodName, MethodResult } from '../../src/shared/api'

/**
 * Calls the contract from inside the page, over a WebSocket of its own to the same host (the
 * page's cookie authenticates it): what the view shows is checked against what the backend says.
 */
export async function callFromPage<M extends MethodName>(page: Page, method: M, input?: MethodInput<M>): Promise<MethodResult<M>> {
  const outcome = await page.evaluate(
    async ({ method, input }) => {
      const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api`)
      await new Promise((resolve, reject) => {
        socket.onopen = resolve
        socket.onerror = () => reject(new Error('the test socket did not open'))
      })
      const reply = await new Promise<{ ok: boolean; result?: unknown; error?: { message: string } }>((resolve) => {
        socket.onmessage = (m) => {
          const message = JSON.parse(String(m.data)) as { type: string; id?: unknown; outcome?: { ok: boolean } }
          if (message.type === 'result' && message.id === 'test') resolve(message.outcome as { ok: boolean })
        }
        socket.send(JSON.stringify({ id: 'test', method, input }))
      })
      socket.close()
      return reply
    },
    { method, input }
  )
  if (!outcome.ok) throw new Error(`${method}: ${outcome.error?.message}`)
  return outcome.result as MethodResult<M>
}
