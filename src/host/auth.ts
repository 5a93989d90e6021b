import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

export function newAccessToken(): string {
  return randomBytes(24).toString('base64url')
}

/** Constant-time comparison; hashing first makes the lengths equal and leaks nothing about them. */
export function tokenMatches(candidate: string | null | undefined, token: string): boolean {
  if (!candidate) return false
  const a = createHash('sha256').update(candidate).digest()
  const b = createHash('sha256').update(token).digest()
  return timingSafeEqual(a, b)
}

export function cookieName(port: number): string {
  // Cookies ignore ports, so two studios on one machine must not share a name.
  return `finetune_studio_${port}`
}

export function readCookie(request: IncomingMessage, name: string): string | null {
  const header = request.headers.cookie
  if (!header) return null
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim())
  }
  return null
}

export interface RequestAuth {
  token: string
  port: number
  /** `host:port` values the Host header may carry (defends against DNS rebinding). */
  allowedHosts: Set<string>
}

export type AuthVerdict = { ok: true; via: 'cookie' | 'query' } | { ok: false; status: 401 | 403; reason: string }

export function checkHost(request: IncomingMessage, auth: RequestAuth): AuthVerdict | null {
  const host = request.headers.host
  if (!host || !auth.allowedHosts.has(host.toLowerCase())) {
    return { ok: false, status: 403, reason: `Host ${JSON.stringify(host ?? '')} is not this studio` }
  }
  return null
}

export function authenticate(request: IncomingMessage, url: URL, auth: RequestAuth): AuthVerdict {
  const hostProblem = checkHost(request, auth)
  if (hostProblem) return hostProblem
  if (tokenMatches(readCookie(request, cookieName(auth.port)), auth.token)) return { ok: true, via: 'cookie' }
  if (tokenMatches(url.searchParams.get('token'), auth.token)) return { ok: true, via: 'query' }
  return { ok: false, status: 401, reason: 'Missing or wrong access token: open the URL that `finetune-studio serve` printed.' }
}

/** A WebSocket must come from our own page: same Host, same scheme, our port. */
export function originAllowed(request: IncomingMessage): boolean {
  const origin = request.headers.origin
  const host = request.headers.host
  if (!origin || !host) return false
  return origin.toLowerCase() === `http://${host.toLowerCase()}`
}
