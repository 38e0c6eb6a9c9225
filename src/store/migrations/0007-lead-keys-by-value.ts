import type { Kysely } from 'kysely'

/**
 * The match keys of queued leads are indexed by value alone, not by (account, value, receipt
 * time). Each lead adds about two entries, on random leaves, and a commit writes every leaf it
 * touched, so the entries' size is what a batch's commit pays for: without the account id (24
 * characters in every entry) storing a lead in 1,000-lead transactions, 200,000 queued, cost
 * 33.2–35.4 µs instead of 39.0–39.3 (BENCHMARKS.md §2). The worker's lookup still names the
 * account; it now checks it, and the receipt time, on the rows a key finds. Those include other
 * accounts' queued leads with the same phone or email: few, unless one account queues many leads
 * on one contact (placeholders and blocked values are not match keys), and then only slower.
 * Kysely runs SQLite migrations outside a transaction, so each step tolerates a run that stopped
 * half-way.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('lead_keys_value').ifExists().execute()
  await db.schema.createIndex('lead_keys_value').ifNotExists().on('lead_keys').column('key_value').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('lead_keys_value').ifExists().execute()
  await db.schema
    .createIndex('lead_keys_value')
    .ifNotExists()
    .on('lead_keys')
    .columns(['account_id', 'key_value', 'received_at'])
    .execute()
}
