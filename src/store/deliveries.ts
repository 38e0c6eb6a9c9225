import type { ExpressionBuilder, Selectable } from 'kysely'
import { newId } from '../domain/ids.js'
import { engineOf } from './connect.js'
import {
  chunks,
  type Database,
  type DeliveriesTable,
  type DeliveryAttemptsTable,
  type Executor,
  insertRows,
  inTransaction,
  reusable,
} from './database.js'

/**
 * The delivery log (webhooks.md §5): one row per event and subscription, `pending` until it is
 * `delivered` or `failed`, with one row per attempt. A claim is a lease like the job queue's: a
 * sender that dies frees its deliveries when `locked_until` passes, and they go out again with the
 * same event id.
 */
export type Delivery = Selectable<DeliveriesTable>
export type DeliveryAttempt = Selectable<DeliveryAttemptsTable>
export type NewDelivery = Pick<
  Delivery,
  'accountId' | 'subscriptionId' | 'eventId' | 'topic' | 'type' | 'body'
>

/**
 * Queues deliveries, due now. Those with `leased` set are claimed at once by `lease.sender` (a
 * dispatcher taking what its lanes have room for). Returns the leased rows as written. When an
 * event already had a delivery to a subscription (its row stays, this one is skipped), the leases
 * of this call are given back and none is returned, so no caller holds a row that is not there.
 */
export async function insertDeliveries(
  db: Executor,
  deliveries: (NewDelivery & { leased?: boolean })[],
  at: number,
  lease?: { sender: string; leaseMs: number },
): Promise<{ leased: Delivery[] }> {
  // Each column named: spread into a new object and then given twelve more columns, a row cost
  // about 6 µs a delivery in the dispatch's profile (bench/deliveries.ts), a thirtieth of sending
  // one; written out, well under one.
  const rows: Delivery[] = deliveries.map((d) => ({
    id: newId(at),
    accountId: d.accountId,
    subscriptionId: d.subscriptionId,
    eventId: d.eventId,
    topic: d.topic,
    type: d.type,
    status: 'pending' as const,
    attempts: 0,
    nextAttemptAt: at,
    lockedBy: lease && d.leased ? lease.sender : null,
    lockedUntil: lease && d.leased ? at + lease.leaseMs : null,
    lastStatusCode: null,
    lastError: null,
    deliveredAt: null,
    body: d.body,
    createdAt: at,
    updatedAt: at,
  }))
  const inserted = await insertRows(db, 'deliveries', rows, { on: ['eventId', 'subscriptionId'] })
  const leased = rows.filter((row) => row.lockedBy !== null)
  if (!lease || leased.length === 0) return { leased: [] }
  if (inserted === rows.length) return { leased }
  await releaseDeliveries(
    db,
    lease.sender,
    leased.map((row) => row.id),
  )
  return { leased: [] }
}

/**
 * Claims up to `limit` due deliveries, oldest due first, skipping the subscriptions in `busy`
 * (those this sender already has as many requests open to as it allows): so one endpoint that
 * hangs holds a few slots and never the queue. PostgreSQL senders skip each other's rows.
 *
 * Read lane by lane (`deliveries_lanes` leads with the subscription after the status): the
 * subscriptions with a pending delivery, two seeks each (to its first in due order, then to it
 * by id), keeping those whose first is due; then the lanes not skipped, in the order of their
 * first, each read for its oldest due and merged with what is in hand. Once a claim's worth is in
 * hand, a lane is read only for what is due at or before the latest of it, and a lane whose first
 * is later ends the reading. A lane skipped costs its seeks however long its backlog (an endpoint
 * hanging for hours keeps every delivery queued to it due since it was queued; read in due order
 * across lanes, each claim read past all of them). Fifty lanes backlogged at once, their due times
 * interleaved, cost a claim 24 lane reads and 800 rows, not 50 and 9,600 (BENCHMARKS.md §7). The
 * lanes are read without locks, in one transaction with the UPDATE, which locks only the rows it
 * takes; on PostgreSQL a row another sender took meanwhile is left out, not replaced.
 */
export async function claimDeliveries(
  db: Executor,
  sender: string,
  options: { limit: number; now: number; leaseMs: number; busy: string[] },
): Promise<Delivery[]> {
  const { limit, now, leaseMs, busy } = options
  if (limit <= 0) return []
  const skipped = new Set(busy)
  return inTransaction(db, async (tx) => {
    const { rows: lanes } = await dueLanes(tx, { now })
    const open = lanes.filter((lane) => !skipped.has(lane.subscriptionId)).sort(byDueTime)
    let due: Pick<Delivery, 'id' | 'nextAttemptAt'>[] = []
    for (const lane of open) {
      // A claim's worth in hand: only what is due at or before the latest of it can still come in.
      const until = due.length < limit ? now : Number(due[limit - 1]?.nextAttemptAt)
      if (Number(lane.nextAttemptAt) > until) break
      const { rows } = await dueInLane(tx, { subscriptionId: lane.subscriptionId, now, until, limit })
      due = [...due, ...rows].sort(byDueTime).slice(0, limit)
    }
    if (due.length === 0) return []
    const ids = due.map((d) => d.id)
    const update = tx.updateTable('deliveries').set({ lockedBy: sender, lockedUntil: now + leaseMs })
    // SQLite: the transaction has held the write lock since it began, so what it read is still
    // pending, due and free. PostgreSQL: another sender may have taken a row since, or settled one
    // it held past its lease for a later retry; one it is taking is skipped, not waited for.
    // (Checked on SQLite too, its planner would read the queue index for `status` rather than the
    // 192 ids.)
    const claimed = await (engineOf(tx) === 'postgres'
      ? update
          .where('id', 'in', lockable(tx, ids))
          .where('status', '=', 'pending')
          .where('nextAttemptAt', '<=', now)
          .where(leaseFree(now))
      : update.where('id', 'in', ids)
    )
      .returningAll()
      .execute()
    return claimed.sort(byDueTime)
  })
}

/** The rows of `ids` no other transaction holds, locked for this one (PostgreSQL). */
const lockable = (db: Executor, ids: string[]) =>
  db.selectFrom('deliveries').select('id').where('id', 'in', ids).forUpdate().skipLocked()

/** Not leased, or its lease has run out. */
const leaseFree = (now: number) => (eb: ExpressionBuilder<Database, 'deliveries'>) =>
  eb.or([eb('lockedUntil', 'is', null), eb('lockedUntil', '<', now)])

const byDueTime = (a: Pick<Delivery, 'nextAttemptAt'>, b: Pick<Delivery, 'nextAttemptAt'>) =>
  Number(a.nextAttemptAt) - Number(b.nextAttemptAt)

/**
 * The subscriptions with a pending delivery due, each with its head's due time (its first
 * pending delivery in due order, leased or not, so no free one of the lane is due earlier), in
 * no order a caller may rely on. A loose scan of `deliveries_lanes`: one seek per subscription
 * with pending deliveries, to its head, found again by id for the next seek and for its due
 * time. (A pending delivery always has a due time; one without would not be the head, so it
 * hides no other.) Each seek is ordered by due time within the subscription too, an order only
 * that index gives: with statistics that count most rows pending (a table just filled, not yet
 * analyzed), PostgreSQL read the subscription's index otherwise, through every delivered row
 * (13 ms a claim at 40,000 delivered).
 */
const dueLanes = reusable((db, v: { now: number }) =>
  db
    .withRecursive('heads(id)', (db) =>
      db
        .selectNoFrom((eb) =>
          eb
            .selectFrom('deliveries')
            .select('id')
            .where('status', '=', 'pending')
            .where('nextAttemptAt', 'is not', null)
            .orderBy('subscriptionId')
            .orderBy('nextAttemptAt')
            .limit(1)
            .as('id'),
        )
        .unionAll(
          db
            .selectFrom('heads')
            .select((eb) =>
              eb
                .selectFrom('deliveries as next')
                .select('next.id')
                .where('next.status', '=', 'pending')
                .where('next.nextAttemptAt', 'is not', null)
                .where(
                  'next.subscriptionId',
                  '>',
                  eb
                    .selectFrom('deliveries as head')
                    .select('head.subscriptionId')
                    .whereRef('head.id', '=', 'heads.id'),
                )
                .orderBy('next.subscriptionId')
                .orderBy('next.nextAttemptAt')
                .limit(1)
                .as('id'),
            )
            .where('heads.id', 'is not', null),
        ),
    )
    .selectFrom('heads')
    .innerJoin('deliveries', 'deliveries.id', 'heads.id')
    .select(['deliveries.subscriptionId', 'deliveries.nextAttemptAt'])
    .where('deliveries.nextAttemptAt', '<=', v.now),
)

/** A lane's oldest deliveries due by `until` (at the latest `now`) and not leased, up to `limit`. */
const dueInLane = reusable((db, v: { subscriptionId: string; now: number; until: number; limit: number }) =>
  db
    .selectFrom('deliveries')
    .select(['id', 'nextAttemptAt'])
    .where('status', '=', 'pending')
    .where('subscriptionId', '=', v.subscriptionId)
    .where('nextAttemptAt', '<=', v.until)
    .where(leaseFree(v.now))
    .orderBy('nextAttemptAt')
    .limit(v.limit),
)

/** Gives claimed deliveries back untouched, for any sender to claim now (a sender stopping, or unable to load them). */
export async function releaseDeliveries(db: Executor, sender: string, ids: string[]): Promise<void> {
  // In chunks: a stopping sender may give back thousands, past an engine's bound on parameters.
  for (const chunk of chunks(ids)) {
    await db
      .updateTable('deliveries')
      .set({ lockedBy: null, lockedUntil: null })
      .where('id', 'in', chunk)
      .where('lockedBy', '=', sender)
      .execute()
  }
}

export type AttemptOutcome = {
  number: number
  sentAt: number
  durationMs: number
  statusCode: number | null
  responseBody: string
  error: string | null
  /** What the delivery becomes: `pending` with `nextAttemptAt`, or `delivered` / `failed`. */
  status: Delivery['status']
  nextAttemptAt: number | null
}

/** Stores attempts in the delivery log, one statement for a batch of them. */
export async function insertAttempts(
  db: Executor,
  attempts: { deliveryId: string; outcome: AttemptOutcome }[],
): Promise<void> {
  await insertRows(
    db,
    'deliveryAttempts',
    attempts.map(({ deliveryId, outcome }) => ({
      id: newId(outcome.sentAt),
      deliveryId,
      number: outcome.number,
      sentAt: outcome.sentAt,
      durationMs: outcome.durationMs,
      statusCode: outcome.statusCode,
      responseBody: outcome.responseBody === '' ? null : outcome.responseBody,
      error: outcome.error,
    })),
  )
}

/**
 * Moves a delivery on after an attempt, if this sender still holds it (a sender whose lease ran
 * out keeps its attempt in the log but leaves the delivery to whoever holds it now). True when
 * the delivery was updated.
 */
export async function settleDelivery(
  db: Executor,
  deliveryId: string,
  sender: string,
  outcome: AttemptOutcome,
  at: number,
): Promise<boolean> {
  const settle = outcome.status === 'delivered' ? settleDelivered : settlePending
  const updated = await settle(db, {
    id: deliveryId,
    sender,
    status: outcome.status,
    attempts: outcome.number,
    nextAttemptAt: outcome.nextAttemptAt,
    lastStatusCode: outcome.statusCode,
    lastError: outcome.error,
    at,
  })
  return Number(updated.numAffectedRows ?? 0) > 0
}

type Settlement = {
  id: string
  sender: string
  status: Delivery['status']
  attempts: number
  nextAttemptAt: number | null
  lastStatusCode: number | null
  lastError: string | null
  at: number
}

/** Moves a delivery on after an attempt, if `sender` still holds it; once per attempt, so reusable. */
function settleQuery(delivered: boolean) {
  return reusable((db, v: Settlement) =>
    db
      .updateTable('deliveries')
      .set({
        status: v.status,
        attempts: v.attempts,
        nextAttemptAt: v.nextAttemptAt,
        lockedBy: null,
        lockedUntil: null,
        lastStatusCode: v.lastStatusCode,
        lastError: v.lastError,
        ...(delivered ? { deliveredAt: v.at } : {}),
        updatedAt: v.at,
      })
      .where('id', '=', v.id)
      .where('lockedBy', '=', v.sender)
      .where('status', '=', 'pending'),
  )
}
const settleDelivered = settleQuery(true)
const settlePending = settleQuery(false)

export async function findDelivery(
  db: Executor,
  accountId: string,
  id: string,
): Promise<Delivery | undefined> {
  return db
    .selectFrom('deliveries')
    .selectAll()
    .where('accountId', '=', accountId)
    .where('id', '=', id)
    .executeTakeFirst()
}

export async function findAttempts(db: Executor, deliveryId: string): Promise<DeliveryAttempt[]> {
  return db
    .selectFrom('deliveryAttempts')
    .selectAll()
    .where('deliveryId', '=', deliveryId)
    .orderBy('id')
    .execute()
}

export type DeliveryFilter = {
  accountId: string
  /** Only deliveries of subscriptions whose group is here or below. */
  rootGroupId: string
  subscriptionId?: string
  status?: Delivery['status']
  topic?: string
  /** Newest first: only deliveries older than this id. */
  before?: string
  limit: number
}

export async function listDeliveries(db: Executor, filter: DeliveryFilter): Promise<Delivery[]> {
  let query = db
    .selectFrom('deliveries')
    .innerJoin('subscriptions', 'subscriptions.id', 'deliveries.subscriptionId')
    .innerJoin('groupClosure', 'groupClosure.descendantId', 'subscriptions.groupId')
    .selectAll('deliveries')
    .where('deliveries.accountId', '=', filter.accountId)
    .where('groupClosure.ancestorId', '=', filter.rootGroupId)
  if (filter.subscriptionId) query = query.where('deliveries.subscriptionId', '=', filter.subscriptionId)
  if (filter.status) query = query.where('deliveries.status', '=', filter.status)
  if (filter.topic) query = query.where('deliveries.topic', '=', filter.topic)
  if (filter.before) query = query.where('deliveries.id', '<', filter.before)
  return query.orderBy('deliveries.id', 'desc').limit(filter.limit).execute()
}

/**
 * Queues deliveries again now, each for a fresh run of the retry schedule (webhooks.md §5);
 * the event id, and so the receiver's dedupe key, stays the same. Returns how many were queued.
 */
export async function requeueDeliveries(
  db: Executor,
  where: { ids?: string[]; subscriptionId?: string; failedSince?: number },
  at: number,
): Promise<number> {
  let update = db.updateTable('deliveries').set({
    status: 'pending',
    attempts: 0,
    nextAttemptAt: at,
    lockedBy: null,
    lockedUntil: null,
    updatedAt: at,
  })
  // Only deliveries of active subscriptions: a deactivation committed since the caller looked wins.
  update = update.where('subscriptionId', 'in', (eb) =>
    eb.selectFrom('subscriptions').select('subscriptions.id').where('subscriptions.active', '=', 1),
  )
  if (where.ids) update = update.where('id', 'in', where.ids)
  if (where.subscriptionId) update = update.where('subscriptionId', '=', where.subscriptionId)
  if (where.failedSince !== undefined)
    update = update.where('status', '=', 'failed').where('createdAt', '>=', where.failedSince)
  else update = update.where('status', '!=', 'pending')
  const result = await update.executeTakeFirst()
  return Number(result.numUpdatedRows)
}

/**
 * Retention (webhooks.md §5): delivered deliveries go after `deliveredMs`, failed ones after
 * `failedMs`, with their attempts; then dispatched events no delivery refers to any more, once
 * older than both. Returns how many deliveries went.
 */
export async function purgeDeliveries(
  db: Executor,
  options: { now: number; deliveredMs: number; failedMs: number },
): Promise<number> {
  const { now, deliveredMs, failedMs } = options
  let purged = 0
  for (const [status, age] of [
    ['delivered', deliveredMs],
    ['failed', failedMs],
  ] as const) {
    const old = db
      .selectFrom('deliveries')
      .select('id')
      .where('status', '=', status)
      .where('updatedAt', '<', now - age)
    await db.deleteFrom('deliveryAttempts').where('deliveryId', 'in', old).execute()
    const result = await db
      .deleteFrom('deliveries')
      .where('status', '=', status)
      .where('updatedAt', '<', now - age)
      .executeTakeFirst()
    purged += Number(result.numDeletedRows)
  }
  await db
    .deleteFrom('events')
    .where('dispatchedAt', '<', now - Math.max(deliveredMs, failedMs))
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('deliveries')
            .select('deliveries.id')
            .whereRef('deliveries.eventId', '=', 'events.id'),
        ),
      ),
    )
    .execute()
  return purged
}
