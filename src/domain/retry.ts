/**
 * Backoff for lead jobs that fail (a database hiccup, a bug fixed by a deploy): 2^attempt
 * seconds, capped at one hour, so ten attempts span about two and a half hours before the job is
 * parked as dead for an operator to look at. Jitter of ±20 % keeps retries of a burst of
 * failures from arriving together.
 */
export const JOB_MAX_ATTEMPTS = 10

export function jobBackoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(2 ** attempt * 1000, 60 * 60 * 1000)
  return Math.round(base * (0.8 + 0.4 * random()))
}
