import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import http from 'node:http'
import WebSocket from 'ws'
import sharp from 'sharp'
import { Studio } from '../core/services/studio'
import { startWebHost, type WebHost } from './web-host'
import { tokenMatches } from './auth'
import type { ServerMessage } from '../shared/ws-protocol'
import { writeImageFolder } from '../../test/generators/images'

let root: string
let studio: Studio
let host: WebHost

interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
  bytes: Buffer
}

/** Raw HTTP, so the request path reaches the server exactly as written (no URL normalization). */
function get(rawPath: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port: host.port, path: rawPath, headers: { Host: `127.0.0.1:${host.port}`, ...headers } }, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (d: Buffer) => chunks.push(d))
      response.on('end', () => {
        const bytes = Buffer.concat(chunks)
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: bytes.toString('utf8'), bytes })
      })
    })
    request.on('error', reject)
    request.end()
  })
}

async function sessionCookie(): Promise<string> {
  const reply = await get(`/?token=${host.token}`)
  expect(reply.status).toBe(303)
  return String(reply.headers['set-cookie']).split(';')[0]
}

function openSocket(headers: Record<string, string>, query = ''): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${host.port}/api${query}`, { headers })
    ws.once('open', () => resolve(ws))
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused with ${res.statusCode}`)))
    ws.once('error', reject)
  })
}

function exchange(ws: WebSocket, frame: string): Promise<ServerMessage> {
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const message = JSON.parse(data.toString()) as ServerMessage
      if (message.type !== 'result') return
      ws.off('message', onMessage)
      resolve(message)
    }
    ws.on('message', onMessage)
    ws.send(frame)
  })
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-host-'))
  const rendererDir = path.join(root, 'renderer')
  fs.mkdirSync(rendererDir)
  fs.writeFileSync(path.join(rendererDir, 'index.html'), '<!doctype html><title>studio</title>')
  fs.writeFileSync(path.join(root, 'secret.txt'), 'do not serve me')
  studio = await Studio.open({ dataDir: path.join(root, 'data'), transport: 'web', heartbeatSeconds: 0 })
  host = await startWebHost({ studio, rendererDir })
})

afterAll(async () => {
  await host?.close()
  await studio?.close()
  fs.rmSync(root, { recursive: true, force: true })
})

describe('the access token', () => {
  it('compares in constant time and only matches exactly', () => {
    expect(tokenMatches('abc', 'abc')).toBe(true)
    expect(tokenMatches('abd', 'abc')).toBe(false)
    expect(tokenMatches('abcd', 'abc')).toBe(false)
    expect(tokenMatches('', 'abc')).toBe(false)
    expect(tokenMatches(undefined, 'abc')).toBe(false)
  })

  it('binds to loopback and prints a URL carrying the token', () => {
    expect(host.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
    expect(host.openUrl).toBe(`${host.url}?token=${host.token}`)
    expect(host.token.length).toBeGreaterThanOrEqual(32)
  })
})

describe('HTTP', () => {
  it('refuses the page without a token or with a wrong one', async () => {
    expect((await get('/')).status).toBe(401)
    expect((await get('/?token=wrong')).status).toBe(401)
    expect((await get('/', { Cookie: `finetune_studio_${host.port}=wrong` })).status).toBe(401)
  })

  it('trades a valid token for an HttpOnly cookie and then serves the UI', async () => {
    const first = await get(`/?token=${host.token}`)
    expect(first.status).toBe(303)
    expect(first.headers.location).toBe('/')
    expect(String(first.headers['set-cookie'])).toMatch(/HttpOnly; SameSite=Strict/)
    const page = await get('/', { Cookie: await sessionCookie() })
    expect(page.status).toBe(200)
    expect(page.body).toContain('<title>studio</title>')
  })

  it('refuses a foreign Host header (DNS rebinding)', async () => {
    const reply = await get(`/?token=${host.token}`, { Host: `evil.example:${host.port}` })
    expect(reply.status).toBe(403)
  })

  it('serves nothing outside the build folder', async () => {
    const cookie = await sessionCookie()
    for (const attempt of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/%2e%2e%2fsecret.txt', '//../secret.txt']) {
      const reply = await get(attempt, { Cookie: cookie })
      expect(reply.body, attempt).not.toContain('do not serve me')
      expect(reply.status, attempt).toBe(404)
    }
  })
})

describe('the WebSocket API', () => {
  const origin = () => `http://127.0.0.1:${host.port}`

  it('refuses a connection without the token', async () => {
    await expect(openSocket({ Origin: origin() })).rejects.toThrow(/401/)
  })

  it('refuses a connection from a foreign origin even with the token', async () => {
    const cookie = await sessionCookie()
    await expect(openSocket({ Origin: 'http://evil.example', Cookie: cookie })).rejects.toThrow(/403/)
    await expect(openSocket({ Cookie: cookie })).rejects.toThrow(/403/)
  })

  it('answers a contract call from our own page', async () => {
    const ws = await openSocket({ Origin: origin(), Cookie: await sessionCookie() })
    const reply = await exchange(ws, JSON.stringify({ id: 1, method: 'system.info' }))
    expect(reply).toMatchObject({ type: 'result', id: 1, outcome: { ok: true } })
    if (reply.type === 'result' && reply.outcome.ok) {
      const info = reply.outcome.result as { database: { schemaVersion: number }; transport: string }
      expect(info.database.schemaVersion).toBeGreaterThanOrEqual(1)
      expect(info.transport).toBe('web')
    }
    ws.close()
  })

  it('answers malformed frames and invalid input with errors naming the problem', async () => {
    const ws = await openSocket({ Origin: origin() }, `?token=${host.token}`)
    expect(await exchange(ws, 'not json')).toMatchObject({ id: null, outcome: { ok: false, error: { code: 'invalid_input', message: /not JSON/ } } })
    expect(await exchange(ws, JSON.stringify({ id: 2 }))).toMatchObject({ id: 2, outcome: { ok: false, error: { message: /method/ } } })
    expect(await exchange(ws, JSON.stringify({ id: 3, method: 'system.info', input: { x: 1 } }))).toMatchObject({
      id: 3,
      outcome: { ok: false, error: { code: 'invalid_input', fields: [{ path: 'x' }] } }
    })
    expect(await exchange(ws, JSON.stringify({ id: 4, method: 'fs.readFile', input: {} }))).toMatchObject({
      id: 4,
      outcome: { ok: false, error: { code: 'unknown_method' } }
    })
    ws.close()
  })
})

describe('the event stream', () => {
  it('pushes studio events to every connected page', async () => {
    const ws = await openSocket({ Origin: `http://127.0.0.1:${host.port}` }, `?token=${host.token}`)
    const received = new Promise<ServerMessage>((resolve) => ws.once('message', (data) => resolve(JSON.parse(data.toString()))))
    studio.emit('system.heartbeat', { time: '2026-01-01T00:00:00.000Z', uptimeSeconds: 3 })
    expect(await received).toEqual({ type: 'event', event: 'system.heartbeat', payload: { time: '2026-01-01T00:00:00.000Z', uptimeSeconds: 3 } })
    ws.close()
  })
})

describe('thumbnails', () => {
  it('serves an image thumbnail by id behind the token, and nothing by path', async () => {
    const folder = path.join(root, 'pictures')
    await writeImageFolder(folder, { classes: 1, perClass: 2, size: 40 })
    const result = await studio.imports.runToEnd({ newDatasetName: 'thumbs' }, { kind: 'folder', path: folder })
    const imageId = (await studio.call('images.page', { datasetId: result.datasetId })) as { ok: true; result: { items: { id: number }[] } }
    const id = imageId.result.items[0].id
    const cookie = await sessionCookie()

    const thumb = await get(`/thumbnails/${id}`, { Cookie: cookie })
    expect(thumb.status).toBe(200)
    expect(thumb.headers['content-type']).toMatch(/^image\/(jpeg|webp)$/)
    expect((await get(`/thumbnails/${id}`)).status).toBe(401)
    expect((await get('/thumbnails/999999', { Cookie: cookie })).status).toBe(404)
    expect((await get(`/thumbnails/${encodeURIComponent(path.join(folder, 'class-0', '0000.jpg'))}`, { Cookie: cookie })).status).toBe(404)
  })

  it('serves a larger preview for labelling with ?size=preview, behind the same cookie, and refuses an unknown size', async () => {
    const folder = path.join(root, 'large')
    await writeImageFolder(folder, { classes: 1, perClass: 1, size: 600 })
    const result = await studio.imports.runToEnd({ newDatasetName: 'large' }, { kind: 'folder', path: folder })
    const page = (await studio.call('images.page', { datasetId: result.datasetId })) as { ok: true; result: { items: { id: number }[] } }
    const id = page.result.items[0].id
    const cookie = await sessionCookie()

    const thumb = await get(`/thumbnails/${id}`, { Cookie: cookie })
    const preview = await get(`/thumbnails/${id}?size=preview`, { Cookie: cookie })
    expect(preview.status).toBe(200)
    expect(preview.headers['content-type']).toBe('image/jpeg')
    // The 600 px photo: 256 px as a thumbnail, its own 600 px as a preview (under the 1024 px cap).
    expect((await sharp(thumb.bytes).metadata()).width).toBe(256)
    expect((await sharp(preview.bytes).metadata()).width).toBe(600)
    expect(fs.existsSync(path.join(root, 'data', 'previews'))).toBe(true)

    expect((await get(`/thumbnails/${id}?size=preview`)).status).toBe(401)
    const unknown = await get(`/thumbnails/${id}?size=huge`, { Cookie: cookie })
    expect(unknown.status).toBe(400)
    expect(unknown.body).toContain('size: expected thumbnail or preview, got "huge"')
    expect((await get('/thumbnails/999999?size=preview', { Cookie: cookie })).status).toBe(404)
  })
})
