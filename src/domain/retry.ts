/**
 * Backoff for lead jobs that fail (a database outage, a bug fixed by a deploy): 15 s after the
 * first failure, doubling, capped at one hour. The job is parked as dead when its tenth attempt
 * fails, after nine waits of 15 s … 1 h: about two hours, long enough to ride out an outage or a
 * deploy, short enough that an operator hears of a real bug the same morning. Jitter of ±20 %
 * keeps the retries of a burst of failures from arriving together.
 */
export const JOB_MAX_ATTEMPTS = 10

export function jobBackoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(15_000 * 2 ** (attempt - 1), 60 * 60 * 1000)
  return Math.round(base * (0.8 + 0.4 * random()))
}

/**
 * Webhook delivery (webhooks.md §4): the delay before each attempt after the previous one. The
 * first goes now; after the eighth the delivery is `failed` (it stays in the log for redelivery).
 */
const WEBHOOK_DELAYS_MS = [
  0,
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
]
export const WEBHOOK_MAX_ATTEMPTS = WEBHOOK_DELAYS_MS.length
const RETRY_AFTER_CAP_MS = 24 * 3_600_000

/**
 * When attempt `next` (2…8) should run, `now` being when the previous one ended: the schedule's
 * delay with ±20 % jitter, but never sooner than a receiver's `Retry-After` (on 429/503), which is
 * honoured up to 24 h. Null when there is no next attempt.
 */
export function nextWebhookAttempt(
  next: number,
  now: number,
  retryAfterMs: number | null = null,
  random: () => number = Math.random,
): number | null {
  const delay = WEBHOOK_DELAYS_MS[next - 1]
  if (delay === undefined || next < 2) return null
  const jittered = Math.round(delay * (0.8 + 0.4 * random()))
  return now + Math.max(jittered, Math.min(retryAfterMs ?? 0, RETRY_AFTER_CAP_MS))
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(header: string | undefined, now: number): number | null {
  if (!header) return null
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000
  const at = Date.parse(header)
  return Number.isNaN(at) ? null : Math.max(0, at - now)
}
