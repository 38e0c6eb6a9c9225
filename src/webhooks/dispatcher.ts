import { sql } from 'kysely'
import { type Db, type Executor, unflushedTransaction } from '../store/database.js'
import { type Delivery, insertDeliveries, type NewDelivery } from '../store/deliveries.js'
import { claimUndispatchedEvents, markDispatched, type StoredEvent } from '../store/events.js'
import { findListeners, type Listener } from '../store/subscriptions.js'
import { type EventBody, renderEventBodies } from './envelope.js'

/** Lets a dispatch claim new deliveries for `sender`: up to `room` of each subscription's, `total` in all. */
export type DispatchLease = {
  sender: string
  leaseMs: number
  total: number
  room: (subscriptionId: string) => number
}

/** A delivery leased to its dispatcher, with what its attempt sends. */
export type LeasedDelivery = {
  delivery: Delivery
  /** The rendered objects the envelope carries. */
  objects: string
  received: number
  sequence: number | null
}

/**
 * A delivery with what its attempt sends: its own objects when it has narrowed ones (a subscription
 * that may not see the event's prospect), else its event's; the event's time and sequence.
 */
export function withObjects(
  delivery: Delivery,
  event: { body: string | null; createdAt: number; sequence: number | null } | undefined,
): LeasedDelivery {
  return {
    delivery,
    objects: delivery.body ?? event?.body ?? '{}',
    received: event?.createdAt ?? delivery.createdAt,
    sequence: event?.sequence ?? null,
  }
}

/**
 * Turns a batch of outbox events into deliveries, one per active subscription that listens to the
 * event's topic and sees its group (webhooks.md §2), and marks the events dispatched, all in one
 * transaction: an event is dispatched exactly once, by one dispatcher, even with many workers.
 * Events no subscription wants are only marked. Returns how many events it took. The commit is
 * not flushed (see `unflushedTransaction`): lost in a power cut, the events are dispatched again
 * (their objects rendered again, as they are then), and a receiver sees any it already had under
 * the same webhook-id; on SQLite a flush each time blocked the worker 1.5–2 ms per dispatch.
 *
 * With `lease`, the dispatcher claims in the same statement as many of each subscription's new
 * deliveries as `room` allows, oldest event first, and returns them as `leased`, ready to send:
 * no claim has to write and read them again. `queuedFor` names the subscriptions whose new
 * deliveries it left in the queue, for a claim.
 */
export async function dispatchEvents(
  db: Db,
  now: number,
  options: {
    limit?: number
    onSetAside?: (eventId: string, error: unknown) => void
    lease?: DispatchLease
  } = {},
): Promise<{ events: number; leased: LeasedDelivery[]; queuedFor: string[] }> {
  const limit = options.limit ?? 200
  return unflushedTransaction(db, async (tx) => {
    const events = await claimUndispatchedEvents(tx, limit)
    if (events.length === 0) return { events: 0, leased: [], queuedFor: [] }
    const listenersOf = new Map<string, Listener[]>()
    for (const accountId of new Set(events.map((e) => e.accountId))) {
      const groupIds = [...new Set(events.filter((e) => e.accountId === accountId).map((e) => e.groupId))]
      for (const listener of await findListeners(tx, accountId, groupIds)) {
        const key = `${accountId}/${listener.seesGroupId}`
        listenersOf.set(key, [...(listenersOf.get(key) ?? []), listener])
      }
    }
    const wanted = new Map<StoredEvent, Listener[]>()
    for (const event of events) {
      const listeners = (listenersOf.get(`${event.accountId}/${event.groupId}`) ?? []).filter((l) =>
        l.topics.includes(event.topic),
      )
      if (listeners.length > 0) wanted.set(event, listeners)
    }
    const rendering = [...wanted.keys()]
    const bodies =
      rendering.length === 0 ? new Map<string, EventBody>() : await renderSaved(tx, rendering, options)
    for (const event of wanted.keys()) if (!bodies.has(event.id)) wanted.delete(event)
    const hidden = await hiddenPairs(tx, wanted, bodies)
    const deliveries: (NewDelivery & { leased: boolean })[] = []
    const room = new Map<string, number>()
    let total = options.lease?.total ?? 0
    for (const [event, listeners] of wanted) {
      const body = bodies.get(event.id)
      for (const listener of listeners) {
        const left = room.get(listener.id) ?? options.lease?.room(listener.id) ?? 0
        const leased = left > 0 && total > 0
        room.set(listener.id, left - 1)
        if (leased) total -= 1
        deliveries.push({
          accountId: event.accountId,
          subscriptionId: listener.id,
          eventId: event.id,
          topic: event.topic,
          type: event.type,
          body: hidden.has(`${listener.groupId}/${event.id}`) ? (body?.outside?.body ?? null) : null,
          leased,
        })
      }
    }
    const { leased } = await insertDeliveries(tx, deliveries, now, options.lease)
    await markDispatched(
      tx,
      events.map((e) => ({ id: e.id, body: bodies.get(e.id)?.full ?? null })),
      now,
    )
    const eventsById = new Map(events.map((e) => [e.id, e]))
    const held = new Set(leased.map((d) => `${d.eventId}/${d.subscriptionId}`))
    return {
      events: events.length,
      queuedFor: [
        ...new Set(
          deliveries
            .filter((d) => !held.has(`${d.eventId}/${d.subscriptionId}`))
            .map((d) => d.subscriptionId),
        ),
      ],
      leased: leased.map((delivery) => {
        const event = eventsById.get(delivery.eventId) as StoredEvent
        const body = bodies.get(event.id)?.full ?? null
        return withObjects(delivery, { body, createdAt: event.createdAt, sequence: event.sequence })
      }),
    }
  })
}

/**
 * `subscriptionGroup/eventId` for each subscription that may not see the prospect its event shows
 * (the prospect is in a group outside the subscription's subtree): it gets the narrowed body.
 */
async function hiddenPairs(
  tx: Executor,
  wanted: Map<StoredEvent, Listener[]>,
  bodies: Map<string, EventBody>,
): Promise<Set<string>> {
  const pairs: { subscriptionGroup: string; prospectGroup: string; eventId: string }[] = []
  for (const [event, listeners] of wanted) {
    const outside = bodies.get(event.id)?.outside
    if (!outside) continue
    for (const l of listeners)
      pairs.push({ subscriptionGroup: l.groupId, prospectGroup: outside.prospectGroupId, eventId: event.id })
  }
  if (pairs.length === 0) return new Set()
  const seen = await tx
    .selectFrom('groupClosure')
    .select(['ancestorId', 'descendantId'])
    .where(
      'ancestorId',
      'in',
      pairs.map((p) => p.subscriptionGroup),
    )
    .where(
      'descendantId',
      'in',
      pairs.map((p) => p.prospectGroup),
    )
    .execute()
  const visible = new Set(seen.map((r) => `${r.ancestorId}/${r.descendantId}`))
  return new Set(
    pairs
      .filter((p) => !visible.has(`${p.subscriptionGroup}/${p.prospectGroup}`))
      .map((p) => `${p.subscriptionGroup}/${p.eventId}`),
  )
}

/** Renders a batch under a savepoint; when it fails, renders its events one by one. */
async function renderSaved(
  tx: Executor,
  events: StoredEvent[],
  options: { onSetAside?: (eventId: string, error: unknown) => void },
): Promise<Map<string, EventBody>> {
  await sql`savepoint render_batch`.execute(tx)
  try {
    const rendered = await renderEventBodies(tx, events)
    await sql`release savepoint render_batch`.execute(tx)
    return rendered
  } catch {
    await sql`rollback to savepoint render_batch`.execute(tx)
    return renderEach(tx, events, options.onSetAside)
  }
}

/**
 * The batch could not be rendered: render its events one by one, and set aside (mark dispatched
 * with no deliveries, and report) each one that still fails, such as a row whose JSON is
 * corrupt. One bad event must not hold up every later one; it stays in the outbox, where an
 * operator can clear its `dispatched_at` to send it once the cause is fixed.
 */
async function renderEach(
  tx: Executor,
  events: StoredEvent[],
  onSetAside?: (eventId: string, error: unknown) => void,
): Promise<Map<string, EventBody>> {
  const bodies = new Map<string, EventBody>()
  for (const event of events) {
    // A savepoint per event: on PostgreSQL a failed statement would otherwise abort the whole batch.
    await sql`savepoint render_event`.execute(tx)
    try {
      for (const [id, body] of await renderEventBodies(tx, [event])) bodies.set(id, body)
      await sql`release savepoint render_event`.execute(tx)
    } catch (error) {
      await sql`rollback to savepoint render_event`.execute(tx)
      onSetAside?.(event.id, error)
    }
  }
  return bodies
}
