import type { Kysely } from 'kysely'

/**
 * The sender's queue index leads with the subscription after the status, so a claim reads lane by
 * lane (`claimDeliveries`): a seek to each subscription with pending deliveries, then its oldest
 * due. Ordered by due time first, a claim that skipped a busy lane read every due delivery of that
 * lane ahead of what it took: beside an endpoint hanging with 100,000 deliveries queued, claims
 * took 0.83–1.2 s of a part's CPU against 0.12 s without it (BENCHMARKS.md §7). Not a partial
 * index over pending rows: SQLite's planner, seeing no equality on its columns, preferred the
 * retention index on (status, updated_at) and a sort. Kysely runs SQLite migrations outside a
 * transaction, so each step tolerates a run that stopped half-way.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('deliveries_lanes')
    .ifNotExists()
    .on('deliveries')
    .columns(['status', 'subscription_id', 'next_attempt_at', 'locked_until', 'id'])
    .execute()
  await db.schema.dropIndex('deliveries_due').ifExists().execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // Dropped first: a database migrated by this migration's first form has the lane columns there.
  await db.schema.dropIndex('deliveries_due').ifExists().execute()
  await db.schema
    .createIndex('deliveries_due')
    .ifNotExists()
    .on('deliveries')
    .columns(['status', 'next_attempt_at', 'subscription_id', 'locked_until', 'id'])
    .execute()
  await db.schema.dropIndex('deliveries_lanes').ifExists().execute()
}
