import type { Page } from '@playwright/test'
import type { MethodInput, MethodName, MethodResult } from '../../src/shared/api'
import type { StudioBridge } from '../../src/shared/bridge'

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

/**
 * The desktop app's way to the same contract: the preload's bridge (`window.studio.api`), whose
 * functions return the CallOutcome the main process's handler gave. The page has no WebSocket to
 * the studio there (it is a file:// page talking over IPC).
 */
export async function callThroughBridge<M extends MethodName>(page: Page, method: M, input?: MethodInput<M>): Promise<MethodResult<M>> {
  type Outcome = { ok: boolean; result?: unknown; error?: { message: string } }
  const outcome = await page.evaluate(
    async ({ method, input }): Promise<Outcome> => {
      const bridge = (window as unknown as { studio?: StudioBridge }).studio
      if (!bridge) return { ok: false, error: { message: 'window.studio is missing: this page is not the desktop app' } }
      return await (bridge.api[method] as (input?: unknown) => Promise<Outcome>)(input)
    },
    { method, input }
  )
  if (!outcome.ok) throw new Error(`${method}: ${outcome.error?.message}`)
  return outcome.result as MethodResult<M>
}
