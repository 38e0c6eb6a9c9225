import type { FastifyBaseLogger } from 'fastify'
import { judgeAttempt } from '../domain/retry.js'
import { type Db, type Tx, unflushedTransaction } from '../store/database.js'
import { type Delivery, insertAttempts, settleDelivery } from '../store/deliveries.js'
import { deactivateSubscriptions, lockSubscription, setFailingSince } from '../store/subscriptions.js'
import type { SendResult } from './sender.js'

export type FinishedAttempt = {
  delivery: Delivery
  subscriptionId: string
  number: number
  sentAt: number
  endedAt: number
  result: SendResult
}

export type Outcome = 'delivered' | 'retrying' | 'failed'

/**
 * Records finished attempts in batches: whatever finished while the previous batch was being
 * written (and whatever answers were already on the wire) goes in the next transaction. One
 * commit (one fsync on SQLite) then serves several attempts: about five per batch at a thousand
 * deliveries a second to one local receiver (bench/deliveries.ts), where a transaction each took
 * over three times as long in all.
 *
 * In a batch, each subscription's row is locked first, in id order, before any of its deliveries
 * (the order every writer of a subscription and its deliveries follows), then each attempt is
 * judged (domain/retry.ts) in the order it finished.
 */
export class AttemptRecorder {
  private queue: FinishedAttempt[] = []
  private writing: Promise<void> | undefined

  constructor(
    private readonly db: Db,
    private readonly sender: string,
    private readonly options: {
      random?: () => number
      log?: Pick<FastifyBaseLogger, 'error' | 'warn'>
      onAttempt?: (topic: string, outcome: Outcome) => void
      /** Told of deliveries whose attempts are written (or could not be): the sender may claim them again. */
      onSettled?: (deliveryIds: string[]) => void
    },
  ) {}

  add(attempt: FinishedAttempt): void {
    this.queue.push(attempt)
    this.writing ??= this.writeAll()
  }

  /** Resolves when everything added so far is written (or has failed to be, and been logged). */
  async settled(): Promise<void> {
    while (this.writing) await this.writing
  }

  private async writeAll(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        // Let the answers already on the wire be read first, so they join this batch.
        await new Promise((resolve) => setImmediate(resolve))
        const batch = this.queue.splice(0)
        // A batch that fails (a deadlock, a busy database) is written again one attempt at a time,
        // so one attempt's trouble never costs the others their record.
        if (!(await this.commit(batch)) && batch.length > 1) for (const one of batch) await this.commit([one])
        this.options.onSettled?.(batch.map((a) => a.delivery.id))
      }
    } finally {
      this.writing = undefined
    }
  }

  /** Writes a batch in one transaction; false (and logged) when it could not. */
  private async commit(batch: FinishedAttempt[]): Promise<boolean> {
    try {
      // A record lost in a power cut only sends its delivery again, with the same webhook-id.
      const { outcomes, deactivated } = await unflushedTransaction(this.db, (tx) => this.write(tx, batch))
      for (const [topic, outcome] of outcomes) this.options.onAttempt?.(topic, outcome)
      for (const [subscriptionId, reason] of deactivated)
        this.options.log?.warn({ subscriptionId, reason }, 'subscription deactivated')
      return true
    } catch (error) {
      // Unrecorded attempts stay claimed until their lease runs out, then go again: at least once.
      this.options.log?.error(
        { err: error, attempts: batch.length },
        'webhook attempts could not be recorded',
      )
      return false
    }
  }

  private async write(
    tx: Tx,
    batch: FinishedAttempt[],
  ): Promise<{ outcomes: [string, Outcome][]; deactivated: [string, string][] }> {
    const ids = [...new Set(batch.map((a) => a.subscriptionId))].sort()
    const health = new Map<
      string,
      {
        active: boolean
        failingSince: number | null
        was: number | null
        gone: string | null
        givenUp: string | null
      }
    >()
    for (const id of ids) {
      const locked = await lockSubscription(tx, id)
      health.set(id, {
        active: locked?.active ?? false,
        failingSince: locked?.failingSince ?? null,
        was: locked?.failingSince ?? null,
        gone: null,
        givenUp: null,
      })
    }
    const outcomes: [string, Outcome][] = []
    const logged: Parameters<typeof insertAttempts>[1] = []
    for (const attempt of batch) {
      const { result, endedAt } = attempt
      const state = health.get(attempt.subscriptionId) as NonNullable<ReturnType<typeof health.get>>
      const succeeded = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300
      const failingSince = succeeded ? null : (state.failingSince ?? attempt.sentAt)
      const judged = judgeAttempt(
        { number: attempt.number, ...result },
        endedAt,
        failingSince ?? endedAt,
        this.options.random,
      )
      // Deactivated meanwhile (a delivery requeued as it happened): nothing more is scheduled.
      const verdict =
        state.active || judged.status === 'delivered'
          ? judged
          : { status: 'failed' as const, nextAttemptAt: null, deactivate: null }
      const redirect = result.statusCode !== null && result.statusCode >= 300 && result.statusCode < 400
      const outcome = {
        number: attempt.number,
        sentAt: attempt.sentAt,
        durationMs: result.durationMs,
        statusCode: result.statusCode,
        responseBody: result.body,
        error: result.error ?? (redirect ? 'redirects are not followed' : null),
        status: verdict.status,
        nextAttemptAt: verdict.nextAttemptAt,
      }
      logged.push({ deliveryId: attempt.delivery.id, outcome })
      // An attempt this sender no longer held (its lease ran out) is in the log, but judges nothing.
      if (!(await settleDelivery(tx, attempt.delivery.id, this.sender, outcome, endedAt))) continue
      state.failingSince = failingSince
      if (verdict.deactivate && result.statusCode === 410) state.gone ??= verdict.deactivate
      else if (verdict.deactivate) state.givenUp ??= verdict.deactivate
      outcomes.push([attempt.delivery.topic, verdict.status === 'pending' ? 'retrying' : verdict.status])
    }
    await insertAttempts(tx, logged)
    const at = Math.max(...batch.map((a) => a.endedAt))
    const deactivated: [string, string][] = []
    for (const [id, state] of health) {
      if (state.failingSince !== state.was) await setFailingSince(tx, id, state.failingSince)
      // 410 deactivates whatever else the batch holds; five days of failure only if no attempt of
      // the batch succeeded after it (the streak is still running at the end of the batch).
      const reason = state.gone ?? (state.failingSince !== null ? state.givenUp : null)
      if (reason && (await deactivateSubscriptions(tx, [id], reason, at)) > 0) deactivated.push([id, reason])
    }
    return { outcomes, deactivated }
  }
}
