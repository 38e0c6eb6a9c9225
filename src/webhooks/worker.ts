import { hostname } from 'node:os'
import type { FastifyBaseLogger } from 'fastify'
import { newId } from '../domain/ids.js'
import { Idle } from '../jobs/idle.js'
import { type Db, unflushedTransaction } from '../store/database.js'
import { claimDeliveries, type Delivery, purgeDeliveries, releaseDeliveries } from '../store/deliveries.js'
import { findEventBodies } from '../store/events.js'
import { findSubscriptionsByIds, type Subscription } from '../store/subscriptions.js'
import { type DispatchLease, dispatchEvents, type LeasedDelivery, withObjects } from './dispatcher.js'
import { signedRequest } from './envelope.js'
import { LANE_ROUNDS, PER_SUBSCRIPTION } from './lanes.js'
import { AttemptRecorder, type Outcome } from './recorder.js'
import type { SendResult } from './sender.js'

export type { Outcome }

export type WebhookWorkerOptions = {
  secretKey: Buffer
  sender: { send(url: string, headers: Record<string, string>, body: string): Promise<SendResult> }
  /** How long a claim holds a delivery: more than one attempt can take, so only a dead sender loses it. */
  leaseMs: number
  /** Requests this process keeps open to one subscription at most (webhooks.md §4). */
  perSubscription?: number
  /**
   * Deliveries this process holds in all (open or waiting in lanes): a bound on sockets and memory.
   * By default sixteen full lanes, so it takes sixteen endpoints that hang, each with a backlog, to
   * hold up the others.
   */
  maxInFlight?: number
  pollMs?: number
  /** How long nudges gather before an idle worker that woke a moment ago dispatches (see GATHER_MS). */
  gatherMs?: number
  retention?: { deliveredMs: number; failedMs: number }
  now?: () => number
  random?: () => number
  log?: Pick<FastifyBaseLogger, 'error' | 'warn' | 'info'>
  onAttempt?: (topic: string, outcome: Outcome) => void
}

const HOUR = 3_600_000
/** Events one dispatch transaction takes. */
const DISPATCH_BATCH = 200
/** A claimed delivery with what its attempt sends. */
type Work = LeasedDelivery & { subscription: Subscription }

/**
 * Delivers webhooks: dispatches new events into deliveries, claims due deliveries and sends them,
 * each attempt signed and recorded (webhooks.md §3–§5). Concurrency is bounded per subscription
 * (`VENTAS_WEBHOOK_CONCURRENCY`, 64 open requests by default), so an endpoint that hangs for its
 * 15 s holds its 64 slots and the others keep flowing. A lane sends at most its open requests per
 * round trip, and a round trip here includes this process's own pauses (a processing transaction
 * holds its event loop for milliseconds): with 8, one subscription fell behind 1,000 leads a
 * second on the benchmark machine (bench/latency.ts). Runs in `ventas serve` and `ventas worker`;
 * any number may share a database.
 */
export class WebhookWorker {
  readonly name = `${hostname()}:${process.pid}:webhooks:${newId().slice(-6)}`
  private running = false
  private loop: Promise<void> | undefined
  private readonly idle: Idle
  /** Per subscription: requests open, and claimed deliveries waiting for one of its slots. */
  private readonly lanes = new Map<string, { open: number; waiting: Work[] }>()
  /** Deliveries this process holds: open or waiting in a lane. */
  private load = 0
  private readonly sending = new Set<Promise<void>>()
  /** Deliveries claimed and not yet recorded. */
  private readonly held = new Set<string>()
  private lastPurge = 0
  private abandoned = false
  private dispatchDue = true
  /**
   * The last claim that found nothing more to take: when, and the lanes it skipped as busy.
   * Until a lane it skipped has room again, deliveries are queued that this process does not hold
   * (a dispatch left some unleased, a claim was given back), or a poll interval passes (a retry or
   * a dead sender's lease comes due), a claim could find nothing more, and is not made.
   */
  private dry: { at: number; busy: Set<string> } | undefined
  private lastDispatch = 0
  private stopping = false
  private readonly now: () => number
  private readonly perSubscription: number
  private readonly maxInFlight: number
  private readonly recorder: AttemptRecorder

  constructor(
    private readonly db: Db,
    private readonly options: WebhookWorkerOptions,
  ) {
    this.now = options.now ?? Date.now
    this.idle = new Idle(options.gatherMs)
    this.perSubscription = options.perSubscription ?? PER_SUBSCRIPTION
    this.maxInFlight = options.maxInFlight ?? 16 * LANE_ROUNDS * this.perSubscription
    this.recorder = new AttemptRecorder(db, this.name, {
      random: options.random,
      log: options.log,
      onAttempt: options.onAttempt,
      onSettled: (ids) => {
        for (const id of ids) this.held.delete(id)
      },
    })
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.loop = this.run()
  }

  /**
   * Stops claiming and starting; gives back the deliveries waiting in lanes; resolves when the
   * requests in flight are answered and recorded, or after `graceMs` (a shutdown must not wait
   * out a 15 s timeout). What is still open then is sent again by the next worker once its lease
   * runs out, with the same webhook-id.
   */
  async stop(graceMs = 5_000): Promise<void> {
    this.running = false
    this.idle.stop()
    await this.loop
    this.stopping = true
    const waiting = [...this.lanes.values()].flatMap((lane) => lane.waiting.splice(0))
    this.load -= waiting.length
    await releaseDeliveries(
      this.db,
      this.name,
      waiting.map((w) => w.delivery.id),
    ).catch((error) => this.options.log?.error({ err: error }, 'could not give back waiting deliveries'))
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled([...this.sending]).then(() => this.recorder.settled()),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs)
      }),
    ])
    clearTimeout(timer)
    this.abandoned = true
  }

  /** New events were committed: dispatch them now rather than at the next poll. */
  nudge(): void {
    this.dispatchDue = true
    this.idle.nudge()
  }

  /** Deliveries were queued outside the dispatcher (recover, redeliver): claim them now. */
  queued(): void {
    this.dry = undefined
    this.nudge()
  }

  /** Dispatches every event waiting, sends what is due, and waits for the answers. For tests and tools. */
  async runOnce(): Promise<number> {
    let handled = 0
    for (let taken = 1; taken > 0; handled += taken) taken = (await this.dispatch()).events
    for (let sent = 1; sent > 0; handled += sent) {
      // Claims until one finds nothing: a dry finding, perhaps left by a concurrent run on a clock
      // that does not move, must not end the run early.
      this.dry = undefined
      sent = await this.fill()
      while (this.sending.size > 0) await Promise.allSettled([...this.sending])
      await this.recorder.settled()
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
        ['dispatch events', () => this.dispatchIfDue()],
        ['claim deliveries', () => this.fill()],
        ['purge the delivery log', () => this.purgeHourly()],
      ] as const) {
        try {
          handled += await run()
        } catch (error) {
          this.options.log?.error({ err: error }, `webhook worker could not ${step}`)
        }
      }
      if (handled === 0 && this.running) await this.idle.sleep(this.options.pollMs ?? 250)
    }
  }

  /**
   * Dispatches when nudged, when the last pass took a full batch, or once a poll interval has
   * passed; not on every answer that frees a slot (at thousands of answers a second that is a
   * transaction each for nothing).
   */
  private async dispatchIfDue(): Promise<number> {
    if (!this.dispatchDue && Date.now() - this.lastDispatch < (this.options.pollMs ?? 250)) return 0
    this.dispatchDue = false
    this.lastDispatch = Date.now()
    const { events, leased, queuedFor } = await this.dispatch(this.leaseAtDispatch())
    // Only new deliveries left in the queue make a claim worth making again; events no
    // subscription wants, deliveries leased here, and deliveries for a lane the last claim skipped
    // as busy (the next would skip it too) do not. Beside an endpoint that hangs, its backlog
    // would otherwise send every other delivery through a claim that reads past that backlog.
    const dry = this.dryFinding()
    if (queuedFor.some((id) => !dry?.busy.has(id))) this.dry = undefined
    if (events >= DISPATCH_BATCH) this.dispatchDue = true
    if (leased.length > 0)
      await this.enqueue(
        leased.map((l) => l.delivery),
        leased,
      )
    return events
  }

  private dispatch(lease?: DispatchLease) {
    return dispatchEvents(this.db, this.now(), {
      limit: DISPATCH_BATCH,
      onSetAside: (eventId, error) =>
        this.options.log?.error(
          { err: error, eventId },
          'event set aside: it could not be rendered for delivery',
        ),
      lease,
    })
  }

  /** `dry`, while it still holds: less than a poll interval old. */
  private dryFinding() {
    return this.dry && this.now() - this.dry.at < (this.options.pollMs ?? 250) ? this.dry : undefined
  }

  /**
   * What a dispatch may lease for this process's lanes: the room each lane has (up to LANE_ROUNDS
   * of its share), `maxInFlight` in all, for subscriptions with nothing else due as far as this
   * process knows. That holds only while the last claim's finding does (see `dry`): it took every
   * due delivery outside the lanes it skipped, and a lane it skipped gets no room. Otherwise
   * nothing is leased, and the claim takes the queue oldest first. What this process cannot know
   * of (another process's unleased deliveries, a retry come due) waits at most a poll interval.
   */
  private leaseAtDispatch(): DispatchLease | undefined {
    const dry = this.dryFinding()
    if (!dry || !this.running) return undefined
    return {
      sender: this.name,
      leaseMs: this.options.leaseMs,
      total: this.maxInFlight - this.load,
      room: (subscriptionId) => {
        if (dry.busy.has(subscriptionId)) return 0
        const lane = this.lanes.get(subscriptionId)
        return LANE_ROUNDS * this.perSubscription - (lane ? lane.open + lane.waiting.length : 0)
      },
    }
  }

  /** Runs retention once an hour; counts as no work (it must not keep the loop from idling). */
  private async purgeHourly(): Promise<number> {
    if (Date.now() - this.lastPurge < HOUR) return 0
    this.lastPurge = Date.now()
    await this.purge()
    return 0
  }

  /**
   * Claims deliveries into per-subscription lanes and starts what each lane's share allows.
   * A lane holds at most LANE_ROUNDS times its share (open plus waiting), so a delivery waits
   * behind a bounded number of its subscription's requests, inside the lease (`leaseFor`). A claim
   * takes no more than LANE_ROUNDS − 1 rounds, and skips lanes holding more than one, so a backlog
   * is claimed in steps without claiming rows only to give them back. Returns how many it took.
   */
  private async fill(): Promise<number> {
    const free = this.maxInFlight - this.load
    if (free <= 0) return 0
    // A lane is claimed for again once it is down to one round (its share), and a claim takes at
    // most the other rounds: a lane never holds more than LANE_ROUNDS, and no claim is given back.
    const busy = [...this.lanes]
      .filter(([, lane]) => lane.open + lane.waiting.length > this.perSubscription)
      .map(([id]) => id)
    // Every due delivery was in a lane that is still full: a claim would take none.
    const dry = this.dryFinding()
    if (dry && [...dry.busy].every((id) => busy.includes(id))) return 0
    const limit = Math.min(free, this.perSubscription * (LANE_ROUNDS - 1))
    const claimed = await unflushedTransaction(this.db, (tx) =>
      claimDeliveries(tx, this.name, { limit, now: this.now(), leaseMs: this.options.leaseMs, busy }),
    )
    // Fewer than asked: the rest of what is due is in the lanes it skipped. (A claim that took its
    // whole limit leaves an earlier finding true: what it took had been in a skipped lane.)
    if (claimed.length < limit) this.dry = { at: this.now(), busy: new Set(busy) }
    // A delivery this process still holds (its lease ran out while it waited, was sent or was being
    // recorded) is not taken twice: the claim only renewed its lease.
    const keep = claimed.filter((d) => !this.held.has(d.id))
    if (keep.length === 0) return 0
    const withEvents = findEventBodies(
      this.db,
      keep.map((d) => d.eventId),
    ).then((events) => keep.map((delivery) => withObjects(delivery, events.get(delivery.eventId))))
    await this.enqueue(keep, withEvents)
    return keep.length
  }

  /**
   * Puts deliveries this process holds into their lanes, with what their attempts send (`work`,
   * read meanwhile for a claim) and their subscriptions, and starts what the lanes allow. When
   * either cannot be read, the deliveries are given back.
   */
  private async enqueue(
    deliveries: Delivery[],
    work: LeasedDelivery[] | Promise<LeasedDelivery[]>,
  ): Promise<void> {
    let loaded: [LeasedDelivery[], Map<string, Subscription>]
    try {
      loaded = await Promise.all([
        work,
        findSubscriptionsByIds(
          this.db,
          [...new Set(deliveries.map((d) => d.subscriptionId))],
          this.options.secretKey,
        ),
      ])
    } catch (error) {
      await this.giveBack(deliveries)
      throw error
    }
    const [claimed, subscriptions] = loaded
    for (const one of claimed) {
      this.held.add(one.delivery.id)
      const subscription = subscriptions.get(one.delivery.subscriptionId) as Subscription
      const lane = this.lanes.get(subscription.id) ?? { open: 0, waiting: [] }
      this.lanes.set(subscription.id, lane)
      lane.waiting.push({ ...one, subscription })
      this.load += 1
    }
    for (const id of new Set(deliveries.map((d) => d.subscriptionId))) this.pump(id)
  }

  /**
   * Gives a claim back rather than leave it until the lease runs out; due again, it is for the
   * next claim (no dispatch may lease newer deliveries ahead of it).
   */
  private async giveBack(deliveries: Delivery[]): Promise<void> {
    this.dry = undefined
    await releaseDeliveries(
      this.db,
      this.name,
      deliveries.map((d) => d.id),
    ).catch((error) =>
      this.options.log?.error({ err: error }, 'could not give back deliveries: their lease will free them'),
    )
  }

  /** Starts the waiting deliveries of a lane while it has fewer than its share open. */
  private pump(subscriptionId: string): void {
    const lane = this.lanes.get(subscriptionId)
    if (!lane) return
    while (lane.open < this.perSubscription && !this.stopping) {
      const next = lane.waiting.shift()
      if (!next) break
      lane.open += 1
      const sending: Promise<void> = this.attempt(next)
        .catch((error) => {
          // Not recorded: its lease runs out and it is claimed again, by this process too.
          this.held.delete(next.delivery.id)
          this.options.log?.error({ err: error, deliveryId: next.delivery.id }, 'webhook attempt failed')
        })
        .finally(() => {
          this.sending.delete(sending)
          lane.open -= 1
          this.load -= 1
          if (lane.open === 0 && lane.waiting.length === 0) this.lanes.delete(subscriptionId)
          else this.pump(subscriptionId)
          // Wake the loop when this lane just became claimable again, not on every answer.
          if (lane.open + lane.waiting.length === this.perSubscription || this.lanes.size === 0)
            this.idle.rouse()
        })
      this.sending.add(sending)
    }
  }

  /** One signed POST of a delivery; its record is left to the recorder, which batches them. */
  private async attempt(work: Work): Promise<void> {
    const sentAt = this.now()
    const { body, headers } = signedRequest(work, sentAt)
    const result = await this.options.sender.send(work.subscription.callbackUrl, headers, body)
    // Stopped while this request was open: leave it to the lease, unrecorded, so a deploy never
    // spends one of the delivery's attempts.
    if (this.abandoned) return
    this.recorder.add({
      delivery: work.delivery,
      subscriptionId: work.subscription.id,
      number: work.delivery.attempts + 1,
      sentAt,
      endedAt: this.now(),
      result,
    })
  }
}
