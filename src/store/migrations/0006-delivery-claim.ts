import type { Kysely } from 'kysely'

/**
 * The sender's queue index also carries what a claim filters on besides due time: the
 * subscription (busy lanes are skipped) and the lease. When every due delivery belongs to a
 * subscription whose lane is full, a claim reads all of them to find none; from (status,
 * next_attempt_at) alone that meant fetching each wide row (its rendered body included): about
 * 1 ms per claim at 3,000 pending deliveries, once after every claim that filled a lane. From
 * this index (the id included, for the claim's UPDATE) the claim reads index pages only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('deliveries_due').execute()
  await db.schema
    .createIndex('deliveries_due')
    .on('deliveries')
    .columns(['status', 'next_attempt_at', 'subscription_id', 'locked_until', 'id'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('deliveries_due').execute()
  await db.schema
    .createIndex('deliveries_due')
    .on('deliveries')
    .columns(['status', 'next_attempt_at'])
    .execute()
}
