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

/** A subscription whose every delivery has failed for this long is deactivated (webhooks.md §4). */
export const WEBHOOK_GIVE_UP_MS = 5 * 24 * 3_600_000

export type AttemptVerdict = {
  status: 'pending' | 'delivered' | 'failed'
  nextAttemptAt: number | null
  /** Why the subscription is deactivated now, if it is. */
  deactivate: string | null
}

/**
 * What one attempt means (webhooks.md §4): `2xx` delivers; anything else, or no answer, fails the
 * attempt and schedules the next one (`Retry-After` honoured on 429 and 503), or fails the delivery
 * after the last. `410 Gone` fails it and deactivates the subscription at once; so does a failure
 * when every attempt since `failingSince` (the start of the subscription's unbroken run of
 * failures, this one included) has failed for five days.
 */
export function judgeAttempt(
  attempt: { number: number; statusCode: number | null; retryAfter: string | null },
  now: number,
  failingSince: number,
  random: () => number = Math.random,
): AttemptVerdict {
  const { number, statusCode } = attempt
  if (statusCode !== null && statusCode >= 200 && statusCode < 300)
    return { status: 'delivered', nextAttemptAt: null, deactivate: null }
  if (statusCode === 410)
    return { status: 'failed', nextAttemptAt: null, deactivate: 'the callback answered 410 Gone' }
  const retryAfter =
    statusCode === 429 || statusCode === 503 ? parseRetryAfter(attempt.retryAfter ?? undefined, now) : null
  const next = nextWebhookAttempt(number + 1, now, retryAfter, random)
  if (now - failingSince >= WEBHOOK_GIVE_UP_MS)
    return {
      status: 'failed',
      nextAttemptAt: null,
      deactivate: `every delivery failed for 5 days, since ${new Date(failingSince).toISOString()}`,
    }
  return next === null
    ? { status: 'failed', nextAttemptAt: null, deactivate: null }
    : { status: 'pending', nextAttemptAt: next, deactivate: null }
}
