import { type Kysely, sql } from 'kysely'

/**
 * What the prospects and interactions API needs (api.md §3–§4): deletion, a folded name for
 * search, and the indexes that keep the filtered lists fast at a million prospects.
 * Name search is a substring match on `search_name` (lower case, accents removed). PostgreSQL
 * answers it from a trigram index (pg_trgm, a trusted extension since PostgreSQL 13); SQLite scans
 * the narrow column, which the benchmark issue measures.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('prospects').addColumn('deleted_at', 'bigint').execute()
  await db.schema
    .alterTable('prospects')
    .addColumn('search_name', 'text', (c) => c.notNull().defaultTo(''))
    .execute()
  // Lists read the live prospects of an account, newest first, filtered by one column at a time.
  await db.schema
    .createIndex('prospects_live')
    .on('prospects')
    .columns(['account_id', 'merged_into', 'deleted_at', 'id'])
    .execute()
  await db.schema
    .createIndex('prospects_created')
    .on('prospects')
    .columns(['account_id', 'created_at'])
    .execute()
  await db.schema
    .createIndex('prospects_assigned')
    .on('prospects')
    .columns(['agent_id', 'assigned_at'])
    .execute()
  await db.schema
    .createIndex('prospects_transferred')
    .on('prospects')
    .columns(['account_id', 'transferred_at'])
    .execute()
  await db.schema
    .createIndex('interactions_account')
    .on('interactions')
    .columns(['account_id', 'id'])
    .execute()
  await db.schema
    .createIndex('interactions_agent')
    .on('interactions')
    .columns(['agent_id', 'prospect_id', 'created_at'])
    .execute()
  if (db.getExecutor().adapter.constructor.name.startsWith('Postgres')) {
    await sql`create extension if not exists pg_trgm`.execute(db)
    await sql`create index prospects_search_name on prospects using gin (search_name gin_trgm_ops)`.execute(
      db,
    )
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const index of [
    'prospects_live',
    'prospects_created',
    'prospects_assigned',
    'prospects_transferred',
    'interactions_account',
    'interactions_agent',
  ]) {
    await db.schema.dropIndex(index).execute()
  }
  await sql`drop index if exists prospects_search_name`.execute(db)
  await db.schema.alterTable('prospects').dropColumn('search_name').execute()
  await db.schema.alterTable('prospects').dropColumn('deleted_at').execute()
}
