import type { Kysely } from 'kysely'

/**
 * The outbox's `events_subject` (subject_id, id) goes: no statement reads events by subject (the
 * dispatcher claims by `events_undispatched`, reads and marks by id, and retention deletes by
 * dispatch time), yet every event wrote an entry into it, on a random leaf when its subject is an
 * existing prospect or a lead. A processed lead writes at least two events, and that index took
 * 0.40 of the 3.66 pages a processed lead wrote to SQLite's WAL (BENCHMARKS.md §3). `down` builds
 * it again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('events_subject').ifExists().execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('events_subject')
    .ifNotExists()
    .on('events')
    .columns(['subject_id', 'id'])
    .execute()
}
