/**
 * Open-loop load at a steady rate: request i leaves at start + i / rate whatever happened to the
 * ones before it, so a slow server shows as latency, never as a lower rate. autocannon's
 * `overallRate` is not that: it caps each connection at its share per second, so every
 * connection sends its share back to back at the top of each second and then idles.
 */
import { performance } from 'node:perf_hooks'
import { Pool } from 'undici'

/** Epoch milliseconds with a fractional part; the same clock in every process of a run. */
export const epochNow = () => performance.timeOrigin + performance.now()

export type Answer = { sentAt: number; ms: number; status: number; body: string }

/**
 * POSTs `count` bodies to `url` at `rate` per second over up to `connections` keep-alive
 * connections. Each answer carries its send time (epochNow) and its latency, from the send to the
 * last byte of the answer; status 0 is a connection error.
 */
export async function sendPaced(
  url: string,
  options: {
    rate: number
    count: number
    body: (index: number) => string
    headers?: Record<string, string>
    connections?: number
  },
): Promise<{ answers: Answer[]; rate: number }> {
  const target = new URL(url)
  const pool = new Pool(target.origin, { connections: options.connections ?? 128, keepAliveTimeout: 60_000 })
  const headers = { 'content-type': 'application/json', ...options.headers }
  const answers = new Array<Answer>(options.count)
  const one = async (index: number) => {
    const body = options.body(index)
    const sent = performance.now()
    try {
      const response = await pool.request({ path: target.pathname, method: 'POST', headers, body })
      const text = await response.body.text()
      answers[index] = {
        sentAt: performance.timeOrigin + sent,
        ms: performance.now() - sent,
        status: response.statusCode,
        body: text,
      }
    } catch (error) {
      answers[index] = {
        sentAt: performance.timeOrigin + sent,
        ms: performance.now() - sent,
        status: 0,
        body: String(error),
      }
    }
  }
  const pending: Promise<void>[] = []
  const started = performance.now()
  for (let index = 0; index < options.count; index++) {
    // setTimeout sleeps at least 1 ms: a request that falls due sooner leaves now, and a late wake-up is caught up.
    const wait = started + (index * 1000) / options.rate - performance.now()
    if (wait >= 1) await new Promise((resolve) => setTimeout(resolve, wait))
    pending.push(one(index))
  }
  const sendingSeconds = (performance.now() - started) / 1000
  await Promise.all(pending)
  await pool.close()
  // The rate achieved: requests over the time it took to send them (one interval more than the span).
  return { answers, rate: options.count / (sendingSeconds + 1 / options.rate) }
}

/** The middle of `xs` (the mean of the two middle ones when their count is even). */
export function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

/** p50, p99 and max of latencies in milliseconds, to a tenth. */
export function percentiles(ms: number[]): { p50ms: number; p99ms: number; maxms: number } {
  const sorted = [...ms].sort((a, b) => a - b)
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN
  const tenth = (v: number) => Math.round(v * 10) / 10
  return { p50ms: tenth(at(0.5)), p99ms: tenth(at(0.99)), maxms: tenth(sorted.at(-1) ?? Number.NaN) }
}
