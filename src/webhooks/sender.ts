import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { isIP, type LookupFunction } from 'node:net'
import { performance } from 'node:perf_hooks'
import { StringDecoder } from 'node:string_decoder'
import { Agent, type Dispatcher } from 'undici'
import { forbiddenAddress } from '../domain/ssrf.js'

/** One delivery attempt as the delivery log records it (webhooks.md §5). */
export type SendResult = {
  /** null when there was no response: timeout, refused connection, SSRF refusal, DNS failure. */
  statusCode: number | null
  /** The first 4 KiB of the response body, utf8; '' when none. */
  body: string
  durationMs: number
  /** Why there was no response, when statusCode is null. */
  error: string | null
  /** The raw Retry-After header, for the retry schedule (domain/retry.ts) to parse. */
  retryAfter: string | null
}

const BODY_LIMIT = 4096
const DEFAULT_TIMEOUT_MS = 15_000 // webhooks.md §4
const ALLOW_PRIVATE_HINT = 'set VENTAS_WEBHOOK_ALLOW_PRIVATE=true to allow it'
/** Marks the error our connect-time lookup raises, so `send` reports its reason as it is. */
const REFUSED_CODE = 'ERR_VENTAS_CALLBACK_REFUSED'

/** What a request needs of a callback URL: where to connect, and the path with its query. */
type CallbackHost = { hostname: string; isAddress: boolean; origin: string; path: string }

/** Scheme and host of a callback URL, or why it cannot be used. Needs no DNS. */
function parseCallbackUrl(url: string): CallbackHost | string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return 'callbackUrl is not a valid URL'
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return `callbackUrl must use http or https, not ${parsed.protocol.slice(0, -1)}`
  }
  // The URL parser has already canonicalised IPv4 spellings (2130706433, 0x7f.1 → 127.0.0.1);
  // IPv6 literals come bracketed.
  const hostname = parsed.hostname.replace(/^\[|\]$/g, '')
  if (hostname === '') return 'callbackUrl has no host'
  return {
    hostname,
    isAddress: isIP(hostname) !== 0,
    origin: parsed.origin,
    path: `${parsed.pathname}${parsed.search}`,
  }
}

function addressRefusal(address: string): string | null {
  const reason = forbiddenAddress(address)
  return reason && `callbackUrl host ${reason}; ${ALLOW_PRIVATE_HINT}`
}

/**
 * Every address `hostname` resolves to, or why it may not be reached: it does not resolve, or
 * (unless allowPrivate) ANY of its addresses is forbidden — one is enough, since the connection
 * may use any of them.
 */
async function resolveHost(
  hostname: string,
  lookup: LookupFunction,
  allowPrivate: boolean,
): Promise<LookupAddress[] | string> {
  const resolved = await new Promise<LookupAddress[] | string>((resolve) => {
    try {
      lookup(hostname, { all: true }, (error, result, family) => {
        if (error) resolve(`callbackUrl host ${hostname} does not resolve (${error.code ?? error.message})`)
        else
          resolve(typeof result === 'string' ? [{ address: result, family: family ?? isIP(result) }] : result)
      })
    } catch (error) {
      resolve(`callbackUrl host ${hostname} does not resolve (${(error as Error).message})`)
    }
  })
  if (typeof resolved === 'string' || allowPrivate) return resolved
  if (resolved.length === 0) return `callbackUrl host ${hostname} does not resolve`
  for (const { address } of resolved) {
    const reason = forbiddenAddress(address)
    if (reason) {
      const all = resolved.map((a) => a.address).join(', ')
      return `callbackUrl host ${hostname} resolves to ${all}; ${reason}; ${ALLOW_PRIVATE_HINT}`
    }
  }
  return resolved
}

/**
 * Why the callback URL may not be used, or null (webhooks.md §2): http(s) only, a host, and unless
 * allowPrivate no forbidden address (domain/ssrf.ts) among those its host resolves to. Delivery
 * checks again (`WebhookSender`), since DNS can change after subscribing.
 */
export async function checkCallbackUrl(
  url: string,
  options: { allowPrivate: boolean; lookup?: LookupFunction },
): Promise<string | null> {
  const host = parseCallbackUrl(url)
  if (typeof host === 'string') return host
  if (options.allowPrivate) return null
  if (host.isAddress) return addressRefusal(host.hostname)
  const resolved = await resolveHost(host.hostname, options.lookup ?? dnsLookup, false)
  return typeof resolved === 'string' ? resolved : null
}

/**
 * The `lookup` every connection of the sender's Agent makes (undici passes its `connect` options
 * to net/tls.connect). The addresses it checks are the addresses the socket connects to: one
 * resolution serves both, so there is no window for DNS rebinding between check and connect.
 */
function connectLookup(lookup: LookupFunction, allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    void resolveHost(hostname, lookup, allowPrivate).then((resolved) => {
      if (typeof resolved === 'string') {
        return callback(Object.assign(new Error(resolved), { code: REFUSED_CODE }), '')
      }
      const wanted = options.family === 4 || options.family === 6 ? options.family : 0
      const usable = wanted === 0 ? resolved : resolved.filter((a) => a.family === wanted)
      const first = usable[0]
      if (!first) {
        const error = new Error(`callbackUrl host ${hostname} has no IPv${wanted} address`)
        return callback(Object.assign(error, { code: REFUSED_CODE }), '')
      }
      // Node 20's autoSelectFamily (on by default) asks for all addresses and tries each in turn.
      if (options.all) callback(null, usable)
      else callback(null, first.address, first.family)
    })
  }
}

/** A short message for the delivery log, from whatever undici or net raised. */
function describeError(error: unknown, timeoutMs: number): string {
  let current = error as (Error & { code?: string; errors?: unknown[] }) | undefined
  // autoSelectFamily wraps one failure per address in an AggregateError; undici sometimes sets `cause`.
  while (current && !current.code && (current.errors?.[0] ?? current.cause)) {
    current = (current.errors?.[0] ?? current.cause) as typeof current
  }
  const code = current?.code
  if (code === REFUSED_CODE) return current?.message ?? 'refused'
  if (code === 'ECONNREFUSED') return 'connection refused (ECONNREFUSED)'
  if (
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  ) {
    return `timed out after ${timeoutMs} ms`
  }
  const message = current?.message || String(error)
  return code && !message.includes(code) ? `${message} (${code})` : message
}

/**
 * POSTs webhook deliveries through one keep-alive Agent. Connections are checked against the SSRF
 * rule when they are opened (see `connectLookup`); a connection reused from the pool was checked
 * then, and reaches the same address, so reuse needs no new check.
 */
export class WebhookSender {
  readonly #agent: Agent
  readonly #allowPrivate: boolean
  readonly #timeoutMs: number
  readonly #userAgent: string

  constructor(options: {
    allowPrivate: boolean
    timeoutMs?: number
    userAgent: string
    lookup?: LookupFunction
  }) {
    this.#allowPrivate = options.allowPrivate
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.#userAgent = options.userAgent
    this.#agent = new Agent({
      connect: {
        timeout: this.#timeoutMs,
        lookup: connectLookup(options.lookup ?? dnsLookup, options.allowPrivate),
      },
    })
  }

  /**
   * One attempt: never throws for a network failure, never follows a redirect (a 3xx is just a
   * status code, webhooks.md §4), and is bounded as a whole by timeoutMs (connect, headers and body).
   * It speaks to the Agent through undici's handler interface rather than `request`: an attempt
   * keeps at most 4 KiB of the answer, so it needs no response stream, and the timer aborts it
   * through the dispatch controller, so it needs no AbortSignal (bench/deliveries.ts, from the
   * queue on SQLite: CPU a delivery 363–479 → 265–379 µs).
   */
  send(url: string, headers: Record<string, string>, body: string): Promise<SendResult> {
    const started = performance.now()
    const result = (outcome: Partial<SendResult>): SendResult => ({
      statusCode: null,
      body: '',
      error: null,
      retryAfter: null,
      ...outcome,
      durationMs: Math.round(performance.now() - started),
    })
    const host = parseCallbackUrl(url)
    if (typeof host === 'string') return Promise.resolve(result({ error: host }))
    // net.connect does not call `lookup` for an IP literal, so the Agent's check never sees it.
    const refused = !this.#allowPrivate && host.isAddress ? addressRefusal(host.hostname) : null
    if (refused) return Promise.resolve(result({ error: refused }))
    return new Promise((resolve) => {
      const timeoutMs = this.#timeoutMs
      let answer: { statusCode: number; retryAfter: string | null } | undefined
      const chunks: Buffer[] = []
      let size = 0
      let controller: Dispatcher.DispatchController | undefined
      let settled = false
      const settle = (outcome: Partial<SendResult>) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve(result(outcome))
      }
      // What was read, once the body ended or reached the cap. The decoder drops a multi-byte
      // character cut at the limit instead of mangling it.
      const answered = (a: NonNullable<typeof answer>) =>
        settle({
          ...a,
          body: new StringDecoder('utf8').write(Buffer.concat(chunks).subarray(0, BODY_LIMIT)),
        })
      const timer = setTimeout(() => {
        settle({ error: `timed out after ${timeoutMs} ms` })
        controller?.abort(new Error('timed out'))
      }, timeoutMs)
      try {
        this.#agent.dispatch(
          {
            origin: host.origin,
            path: host.path,
            method: 'POST',
            headers: { ...headers, 'content-type': 'application/json', 'user-agent': this.#userAgent },
            body,
          },
          {
            onRequestStart: (c) => {
              controller = c
              // Timed out while it waited for a connection: abort before anything is written.
              if (settled) c.abort(new Error('timed out'))
            },
            onResponseStart: (_c, statusCode, responseHeaders) => {
              if (statusCode < 200) return // 1xx: the answer is still to come
              const retryAfter = responseHeaders['retry-after']
              answer = {
                statusCode,
                retryAfter: (Array.isArray(retryAfter) ? retryAfter[0] : retryAfter) ?? null,
              }
            },
            onResponseData: (c, chunk) => {
              if (settled) return
              chunks.push(chunk)
              size += chunk.length
              // Enough of it. The rest is not read: an answer still coming is cut off, and its
              // connection closed. The abort waits for the parser to finish this chunk, so one
              // that ended in it completes first and keeps its connection (the abort is a no-op).
              if (size >= BODY_LIMIT && answer) {
                answered(answer)
                queueMicrotask(() => c.abort(new Error('response body capped')))
              }
            },
            onResponseEnd: () => {
              if (answer) answered(answer)
              else settle({ error: 'the response ended without a status' })
            },
            onResponseError: (_c, error) => settle({ error: describeError(error, timeoutMs) }),
          },
        )
      } catch (error) {
        // undici hands most failures to onResponseError; one it throws is reported the same way.
        settle({ error: describeError(error, timeoutMs) })
      }
    })
  }

  /** Aborts any request still open (its attempt is not recorded; the lease sends it again) and frees the pool. */
  close(): Promise<void> {
    return this.#agent.destroy()
  }
}
