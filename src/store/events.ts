import { newId } from '../domain/ids.js'
import { engineOf } from './connect.js'
import { chunks, type Executor, insertRows, reusable, type Tx, updateRows } from './database.js'

export type NewEvent = {
  accountId: string
  groupId: string
  topic: 'prospects' | 'interactions' | 'agents' | 'leads'
  type: string
  subjectId: string
  sequence: number | null
  payload: Record<string, unknown>
}

/**
 * The event outbox (webhooks.md §6): written in the caller's transaction, so an event exists
 * exactly when the change it describes committed. Delivery reads from here.
 */
export async function appendEvents(db: Executor, events: NewEvent[], at: number): Promise<void> {
  await insertRows(
    db,
    'events',
    events.map((e) => ({ ...e, id: newId(at), payload: JSON.stringify(e.payload), createdAt: at })),
  )
}

export type StoredEvent = Omit<NewEvent, 'payload'> & {
  id: string
  payload: Record<string, unknown>
  createdAt: number
}

/**
 * Takes up to `limit` events not yet turned into deliveries, oldest first. Run it in the
 * transaction that marks them dispatched: PostgreSQL dispatchers then skip each other's events,
 * and SQLite's write transaction holds the others off.
 */
export async function claimUndispatchedEvents(tx: Tx, limit: number): Promise<StoredEvent[]> {
  const { rows } = await undispatched(tx, { limit })
  return rows.map((row) => ({
    ...row,
    topic: row.topic as NewEvent['topic'],
    payload: JSON.parse(row.payload),
  }))
}

/** Every dispatch runs it, hundreds of times a second under load: compiled once per engine. */
const undispatched = reusable((db, v: { limit: number }) => {
  const query = db
    .selectFrom('events')
    .select(['id', 'accountId', 'groupId', 'topic', 'type', 'subjectId', 'sequence', 'payload', 'createdAt'])
    .where('dispatchedAt', 'is', null)
    .orderBy('id')
    .limit(v.limit)
  return engineOf(db) === 'postgres' ? query.forUpdate().skipLocked() : query
})

/**
 * Marks events dispatched, with the objects their deliveries send (null when none matched). A
 * statement for the events with objects, from a list of (id, objects) pairs, and one for those
 * without: a dispatch of 200 events ran a hundred single-row updates, more statements than all
 * its other steps together.
 */
export async function markDispatched(
  tx: Tx,
  events: { id: string; body: string | null }[],
  at: number,
): Promise<void> {
  const silent = events.filter((e) => e.body === null).map((e) => e.id)
  for (const chunk of chunks(silent)) {
    await tx.updateTable('events').set({ dispatchedAt: at }).where('id', 'in', chunk).execute()
  }
  const rendered = events.filter((e) => e.body !== null).map(({ id, body }) => ({ id, body }))
  await updateRows(tx, 'events', 'id', rendered, { same: { dispatchedAt: at } })
}

export async function findEventBodies(
  db: Executor,
  ids: string[],
): Promise<Map<string, { createdAt: number; sequence: number | null; body: string | null }>> {
  if (ids.length === 0) return new Map()
  const rows = await db
    .selectFrom('events')
    .select(['id', 'createdAt', 'sequence', 'body'])
    .where('id', 'in', ids)
    .execute()
  return new Map(rows.map((e) => [e.id, { createdAt: e.createdAt, sequence: e.sequence, body: e.body }]))
}
