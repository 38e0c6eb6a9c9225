import { hostname } from 'node:os'
import type { FastifyBaseLogger } from 'fastify'
import { newId } from '../domain/ids.js'
import { judgeAttempt } from '../domain/retry.js'
import { signatureHeader } from '../domain/signature.js'
import { type Db, inTransaction } from '../store/database.js'
import {
  claimDeliveries,
  type Delivery,
  purgeDeliveries,
  recordAttempt,
  releaseDeliveries,
} from '../store/deliveries.js'
import { findEventBodies } from '../store/events.js'
import {
  deactivateSubscriptions,
  findSubscriptionsByIds,
  lockSubscription,
  type Subscription,
  setFailingSince,
  signingSecrets,
} from '../store/subscriptions.js'
import { dispatchEvents } from './dispatcher.js'
import { envelope } from './envelope.js'
import type { SendResult } from './sender.js'

export type Outcome = 'delivered' | 'retrying' | 'failed'

export type WebhookWorkerOptions = {
  secretKey: Buffer
  sender: { send(url: string, headers: Record<string, string>, body: string): Promise<SendResult> }
  /** How long a claim holds a delivery: more than one attempt can take, so only a dead sender loses it. */
  leaseMs: number
  /** Requests this process keeps open to one subscription at most (webhooks.md §4). */
  perSubscription?: number
  /** Requests this process keeps open in all: a bound on sockets and memory, far above one subscription's share. */
  maxInFlight?: number
  pollMs?: number
  retention?: { deliveredMs: number; failedMs: number }
  now?: () => number
  random?: () => number
  log?: Pick<FastifyBaseLogger, 'error' | 'warn' | 'info'>
  onAttempt?: (topic: string, outcome: Outcome) => void
}

const HOUR = 3_600_000
/**
 * Deliveries one claim takes at most. A claim beyond a subscription's share is given back, so a
 * large claim on a backlog of one subscription writes many rows for nothing; 64 keeps that bounded.
 */
const CLAIM_BATCH = 64

/**
 * Delivers webhooks: dispatches new events into deliveries, claims due deliveries and sends them,
 * each attempt signed and recorded (webhooks.md §3–§5). Concurrency is bounded per subscription
 * (8 open requests by default), so an endpoint that hangs for its 15 s holds 8 slots and the
 * others keep flowing. Runs in `ventas serve` and `ventas worker`; any number may share a database.
 */
export class WebhookWorker {
  readonly name = `${hostname()}:${process.pid}:webhooks:${newId().slice(-6)}`
  private running = false
  private loop: Promise<void> | undefined
  private wake: (() => void) | undefined
  private readonly open = new Map<string, number>()
  private readonly sending = new Set<Promise<void>>()
  private lastPurge = 0
  private abandoned = false
  private readonly now: () => number
  private readonly perSubscription: number
  private readonly maxInFlight: number

  constructor(
    private readonly db: Db,
    private readonly options: WebhookWorkerOptions,
  ) {
    this.now = options.now ?? Date.now
    this.perSubscription = options.perSubscription ?? 8
    this.maxInFlight = options.maxInFlight ?? 512
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.loop = this.run()
  }

  /**
   * Stops claiming; resolves when the requests in flight are answered and recorded, or after
   * `graceMs` (a shutdown must not wait out a 15 s timeout). What is still open then is sent again
   * by the next worker once its lease runs out, with the same webhook-id.
   */
  async stop(graceMs = 5_000): Promise<void> {
    this.running = false
    this.wake?.()
    await this.loop
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled([...this.sending]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs)
      }),
    ])
    clearTimeout(timer)
    this.abandoned = true
  }

  /** New events were committed, or deliveries queued: look now rather than at the next poll. */
  nudge(): void {
    this.wake?.()
  }

  /** Dispatches every event waiting, sends what is due, and waits for the answers. For tests and tools. */
  async runOnce(): Promise<number> {
    let handled = 0
    for (let taken = 1; taken > 0; handled += taken) taken = await this.dispatch()
    for (let sent = 1; sent > 0; handled += sent) {
      sent = await this.fill()
      await Promise.allSettled([...this.sending])
    }
    return handled
  }

  /** Retention (webhooks.md §5); the loop runs it hourly. */
  async purge(): Promise<number> {
    const retention = this.options.retention ?? { deliveredMs: 30 * 24 * HOUR, failedMs: 90 * 24 * HOUR }
    return purgeDeliveries(this.db, { now: this.now(), ...retention })
  }

  private async run(): Promise<void> {
    while (this.running) {
      let handled = 0
      // Each step on its own: events that cannot be dispatched must not stop sending, nor the reverse.
      for (const [step, run] of [
        ['dispatch events', () => this.dispatch()],
        ['claim deliveries', () => this.fill()],
        ['purge the delivery log', () => this.purgeHourly()],
      ] as const) {
        try {
          handled += await run()
        } catch (error) {
          this.options.log?.error({ err: error }, `webhook worker could not ${step}`)
        }
      }
      if (handled === 0 && this.running) await this.idle()
    }
  }

  private dispatch(): Promise<number> {
    return dispatchEvents(this.db, this.now(), {
      onSetAside: (eventId, error) =>
        this.options.log?.error(
          { err: error, eventId },
          'event set aside: it could not be rendered for delivery',
        ),
    })
  }

  /** Runs retention once an hour; counts as no work (it must not keep the loop from idling). */
  private async purgeHourly(): Promise<number> {
    if (Date.now() - this.lastPurge < HOUR) return 0
    this.lastPurge = Date.now()
    await this.purge()
    return 0
  }

  private idle(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.options.pollMs ?? 250)
      this.wake = () => {
        clearTimeout(timer)
        this.wake = undefined
        resolve()
      }
    })
  }

  /** Claims what the free slots allow and starts sending it; returns how many it started. */
  private async fill(): Promise<number> {
    const free = this.maxInFlight - this.sending.size
    if (free <= 0) return 0
    const busy = [...this.open].filter(([, n]) => n >= this.perSubscription).map(([id]) => id)
    const now = this.now()
    const claimed = await claimDeliveries(this.db, this.name, {
      limit: Math.min(free, CLAIM_BATCH),
      now,
      leaseMs: this.options.leaseMs,
      busy,
    })
    if (claimed.length === 0) return 0
    const keep: Delivery[] = []
    const over: string[] = []
    const planned = new Map(this.open)
    for (const delivery of claimed) {
      const n = planned.get(delivery.subscriptionId) ?? 0
      if (n >= this.perSubscription) over.push(delivery.id)
      else {
        planned.set(delivery.subscriptionId, n + 1)
        keep.push(delivery)
      }
    }
    await releaseDeliveries(this.db, this.name, over)
    const [subscriptions, events] = await Promise.all([
      findSubscriptionsByIds(
        this.db,
        [...new Set(keep.map((d) => d.subscriptionId))],
        this.options.secretKey,
      ),
      findEventBodies(
        this.db,
        keep.map((d) => d.eventId),
      ),
    ])
    for (const delivery of keep) {
      const subscription = subscriptions.get(delivery.subscriptionId) as Subscription
      const event = events.get(delivery.eventId)
      const objects = delivery.body ?? event?.body ?? '{}'
      const received = event?.createdAt ?? delivery.createdAt
      this.open.set(subscription.id, (this.open.get(subscription.id) ?? 0) + 1)
      const sending: Promise<void> = this.attempt(delivery, subscription, { objects, received, event })
        .catch((error) =>
          this.options.log?.error({ err: error, deliveryId: delivery.id }, 'webhook attempt failed'),
        )
        .finally(() => {
          this.sending.delete(sending)
          const left = (this.open.get(subscription.id) ?? 1) - 1
          if (left === 0) this.open.delete(subscription.id)
          else this.open.set(subscription.id, left)
          this.wake?.()
        })
      this.sending.add(sending)
    }
    return keep.length
  }

  /** One signed POST of a delivery, then its record: the attempt, the delivery's next state, the subscription's health. */
  private async attempt(
    delivery: Delivery,
    subscription: Subscription,
    content: { objects: string; received: number; event: { sequence: number | null } | undefined },
  ): Promise<void> {
    const number = delivery.attempts + 1
    const sentAt = this.now()
    const body = envelope(
      {
        subscriptionId: subscription.id,
        topic: delivery.topic,
        type: delivery.type,
        operationId: delivery.eventId,
        received: content.received,
        sent: sentAt,
        attempts: number,
        sequence: content.event?.sequence ?? null,
      },
      content.objects,
    )
    const timestamp = Math.floor(sentAt / 1000)
    const result = await this.options.sender.send(
      subscription.callbackUrl,
      {
        'webhook-id': delivery.eventId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signatureHeader(
          signingSecrets(subscription, sentAt),
          delivery.eventId,
          timestamp,
          body,
        ),
      },
      body,
    )
    // Stopped while this request was open: leave it to the lease, unrecorded, so a deploy never
    // spends one of the delivery's attempts.
    if (this.abandoned) return
    const at = this.now()
    const succeeded = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300
    const verdict = await inTransaction(this.db, async (tx) => {
      const health = await lockSubscription(tx, subscription.id)
      const failingSince = succeeded ? null : (health?.failingSince ?? sentAt)
      const verdict = judgeAttempt({ number, ...result }, at, failingSince ?? at, this.options.random)
      const error =
        result.error ??
        (result.statusCode !== null && result.statusCode >= 300 && result.statusCode < 400
          ? 'redirects are not followed'
          : null)
      const held = await recordAttempt(
        tx,
        delivery,
        this.name,
        {
          number,
          sentAt,
          durationMs: result.durationMs,
          statusCode: result.statusCode,
          responseBody: result.body,
          error,
          status: verdict.status,
          nextAttemptAt: verdict.nextAttemptAt,
        },
        at,
      )
      // An attempt this sender no longer held (its lease ran out) is in the log, but judges nothing.
      if (!held) return { ...verdict, deactivate: null }
      if (failingSince !== health?.failingSince) await setFailingSince(tx, subscription.id, failingSince)
      if (verdict.deactivate) await deactivateSubscriptions(tx, [subscription.id], verdict.deactivate, at)
      return verdict
    })
    if (verdict.deactivate)
      this.options.log?.warn(
        { subscriptionId: subscription.id, reason: verdict.deactivate },
        'subscription deactivated',
      )
    this.options.onAttempt?.(delivery.topic, verdict.status === 'pending' ? 'retrying' : verdict.status)
  }
}
