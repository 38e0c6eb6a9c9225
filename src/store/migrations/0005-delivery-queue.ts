import { type Kysely, sql } from 'kysely'

/**
 * The sender's queue index on (status, next_attempt_at) instead of next_attempt_at over pending
 * rows only. The claim compares status to a bound parameter, which SQLite cannot match to a
 * partial index's condition: it read the retention index (status, updated_at) and sorted every
 * pending row on each claim, about 0.8 ms per claim at 3,000 pending deliveries. With status
 * leading, both engines seek to the due rows in order.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('deliveries_due').execute()
  await db.schema
    .createIndex('deliveries_due')
    .on('deliveries')
    .columns(['status', 'next_attempt_at'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('deliveries_due').execute()
  await db.schema
    .createIndex('deliveries_due')
    .on('deliveries')
    .columns(['next_attempt_at'])
    .where(sql.ref('status'), '=', 'pending')
    .execute()
}
