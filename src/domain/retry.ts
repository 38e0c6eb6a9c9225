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
