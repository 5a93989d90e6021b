import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import fs from 'node:fs'
import path from 'node:path'
import sirv from 'sirv'
import { WebSocketServer, type WebSocket } from 'ws'
import type { Studio } from '../core/services/studio'
import type { CallOutcome } from '../shared/errors'
import { authenticate, cookieName, newAccessToken, originAllowed, type RequestAuth } from './auth'
import { parseClientMessage, type ServerMessage } from '../shared/ws-protocol'
import { parseRendition, type Rendition } from '../shared/renditions'

export interface WebHostOptions {
  studio: Studio
  rendererDir: string
  host?: string
  port?: number
  token?: string
}

export interface WebHost {
  url: string
  /** The URL with the access token: what the user opens. */
  openUrl: string
  token: string
  port: number
  close(): Promise<void>
}

const MAX_MESSAGE_BYTES = 1 << 20

export async function startWebHost(options: WebHostOptions): Promise<WebHost> {
  const indexFile = path.join(options.rendererDir, 'index.html')
  if (!fs.existsSync(indexFile)) {
    throw new Error(`The studio's UI is not built (${indexFile} is missing): run \`npm run build\` first.`)
  }
  const bindHost = options.host ?? '127.0.0.1'
  const token = options.token ?? newAccessToken()
  const serveStatic = sirv(options.rendererDir, { dev: false, etag: true, gzip: false, brotli: false })
  const server = http.createServer()
  const sockets = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES })
  const auth: RequestAuth = { token, port: 0, allowedHosts: new Set() }

  server.on('request', (request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost')
    const verdict = authenticate(request, url, auth)
    if (!verdict.ok) return refuse(response, verdict.status, verdict.reason)
    if (verdict.via === 'query') {
      // Trade the token in the address bar for a cookie, so it does not linger in history.
      url.searchParams.delete('token')
      response.writeHead(303, {
        'Set-Cookie': `${cookieName(auth.port)}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
        Location: url.pathname + url.search,
        'Cache-Control': 'no-store'
      })
      return response.end()
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') return refuse(response, 405, 'Method not allowed')
    response.setHeader('X-Content-Type-Options', 'nosniff')
    response.setHeader('X-Frame-Options', 'DENY')
    const thumbnail = THUMBNAIL_ROUTE.exec(url.pathname)
    if (thumbnail) {
      const size = parseRendition(url.searchParams.get('size'))
      if (!size.ok) return refuse(response, 400, size.message)
      return void serveThumbnail(options.studio, Number(thumbnail[1]), size.rendition, response)
    }
    serveStatic(request, response, () => refuse(response, 404, 'Not found'))
  })

  server.on('upgrade', (request, socket: Duplex, head) => {
    const url = new URL(request.url ?? '/', 'http://localhost')
    const verdict = authenticate(request, url, auth)
    if (url.pathname !== '/api') return rejectUpgrade(socket, 404, 'Not found')
    if (!verdict.ok) return rejectUpgrade(socket, verdict.status, verdict.reason)
    if (!originAllowed(request)) return rejectUpgrade(socket, 403, 'Foreign origin')
    sockets.handleUpgrade(request, socket, head, (ws) => serveClient(ws, options.studio))
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, bindHost, () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  auth.port = port
  for (const name of allowedHostNames(bindHost)) auth.allowedHosts.add(`${name}:${port}`)
  const displayHost = bindHost.includes(':') ? `[${bindHost}]` : bindHost
  const url = `http://${displayHost === '0.0.0.0' ? '127.0.0.1' : displayHost}:${port}/`

  return {
    url,
    openUrl: `${url}?token=${token}`,
    token,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of sockets.clients) client.terminate()
        sockets.close()
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

function allowedHostNames(bindHost: string): string[] {
  const names = new Set(['127.0.0.1', 'localhost', '[::1]', bindHost.includes(':') ? `[${bindHost}]` : bindHost])
  return [...names].map((n) => n.toLowerCase())
}

function serveClient(ws: WebSocket, studio: Studio): void {
  const send = (message: ServerMessage) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message))
  }
  const unsubscribe = studio.onEvent((event) => send({ type: 'event', ...event }))
  ws.on('close', unsubscribe)
  ws.on('message', async (data, isBinary) => {
    const parsed = parseClientMessage(isBinary ? null : data.toString())
    if (!parsed.ok) return send({ type: 'result', id: parsed.id, outcome: { ok: false, error: parsed.error } })
    const outcome: CallOutcome = await studio.call(parsed.message.method, parsed.message.input)
    send({ type: 'result', id: parsed.message.id, outcome })
  })
}

/** Thumbnails and previews (`?size=preview`) are addressed by image id only: the page never names a path on disk. */
const THUMBNAIL_ROUTE = /^\/thumbnails\/(\d{1,12})$/

async function serveThumbnail(studio: Studio, imageId: number, rendition: Rendition, response: http.ServerResponse): Promise<void> {
  const file = await studio.rendition(imageId, rendition).catch(() => null)
  if (!file) return refuse(response, 404, `No ${rendition} for image ${imageId}`)
  response.writeHead(200, { 'Content-Type': file.endsWith('.jpg') ? 'image/jpeg' : 'image/webp', 'Cache-Control': 'private, max-age=86400, immutable' })
  fs.createReadStream(file).pipe(response)
}

function refuse(response: http.ServerResponse, status: number, reason: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' })
  response.end(`${reason}\n`)
}

function rejectUpgrade(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${reason}\n`)
}
