import { newId } from '../domain/ids.js'
import type { Executor } from './database.js'

export type NewEvent = {
  accountId: string
  groupId: string
  topic: 'prospects' | 'interactions' | 'leads'
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
  if (events.length === 0) return
  await db
    .insertInto('events')
    .values(events.map((e) => ({ ...e, id: newId(at), payload: JSON.stringify(e.payload), createdAt: at })))
    .execute()
}
