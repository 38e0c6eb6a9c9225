import { type Kysely, sql } from 'kysely'

/**
 * Released keys (`active = 0`: those of a deleted prospect) get an index of their own, in place of
 * `prospect_keys_value` over every key. Active keys are found through
 * `prospect_keys_active`, which the one-active-holder rule needs anyway, so a new prospect's key
 * is now written into one index instead of two: that index took about one page of the 5.7 a
 * processed lead wrote (BENCHMARKS.md §3). A lookup by value reads both indexes, the active one
 * with the key's type. Kysely runs SQLite migrations outside a transaction, so each step
 * tolerates a run that stopped half-way.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('prospect_keys_inactive')
    .ifNotExists()
    .on('prospect_keys')
    .columns(['account_id', 'key_value'])
    .where(sql.ref('active'), '=', 0)
    .execute()
  await db.schema.dropIndex('prospect_keys_value').ifExists().execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('prospect_keys_value')
    .ifNotExists()
    .on('prospect_keys')
    .columns(['account_id', 'key_value'])
    .execute()
  await db.schema.dropIndex('prospect_keys_inactive').ifExists().execute()
}
