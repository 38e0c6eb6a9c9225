import { type Kysely, PostgresAdapter, sql } from 'kysely'
import { foldName } from '../../domain/names.js'

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
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    // The extension is database-wide: make it once, in public (not in whichever schema migrates
    // first), under a lock because migration locks are per schema; then name its operator class
    // wherever it lives, since another schema's search_path may not include it.
    await sql`select pg_advisory_xact_lock(hashtext('ventas:pg_trgm'))`.execute(db)
    await sql`create extension if not exists pg_trgm with schema public`.execute(db)
    const { rows } = await sql<{
      schema: string
    }>`select extnamespace::regnamespace::text as schema from pg_extension where extname = 'pg_trgm'`.execute(
      db,
    )
    const schema = rows[0]?.schema ?? 'public'
    await sql`create index prospects_search_name on prospects using gin (search_name ${sql.id(schema, 'gin_trgm_ops')})`.execute(
      db,
    )
  }
  await backfillSearchNames(db)
}

/** Prospects made before this migration get their folded names. */
async function backfillSearchNames(db: Kysely<unknown>): Promise<void> {
  const rows = await sql<{
    id: string
    first_name: string
    last_name: string
  }>`select id, first_name, last_name from prospects`.execute(db)
  for (const row of rows.rows) {
    await sql`update prospects set search_name = ${foldName(`${row.first_name} ${row.last_name}`)} where id = ${row.id}`.execute(
      db,
    )
  }
}
