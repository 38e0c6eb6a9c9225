import { type Kysely, sql } from 'kysely'

/**
 * Leads, the job queue, prospects with their match keys, interactions, merge records, the event
 * outbox, idempotency keys and per-account blocked values (identity.md, api.md §2–§3).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('leads')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('group_id', 'text', (c) => c.notNull())
    .addColumn('integration_id', 'text', (c) => c.notNull())
    .addColumn('industry', 'text', (c) => c.notNull())
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('processed_at', 'bigint')
    .addColumn('prospect_id', 'text')
    .addColumn('merged', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    .addColumn('body', 'text', (c) => c.notNull())
    // JSON [provider, providerLeadId]: one column so a plain unique index de-duplicates on both engines.
    .addColumn('provider_ref', 'text')
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('match_keys', 'text', (c) => c.notNull().defaultTo('[]'))
    .execute()
  await db.schema
    .createIndex('leads_provider_ref')
    .unique()
    .on('leads')
    .columns(['integration_id', 'provider_ref'])
    .execute()
  await db.schema.createIndex('leads_prospect').on('leads').columns(['prospect_id', 'id']).execute()

  // Match keys of leads still queued, so a worker can see that an older lead of the same person
  // is not applied yet and wait for it (identity.md §6). Rows leave when their lead is applied.
  await db.schema
    .createTable('lead_keys')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('key_value', 'text', (c) => c.notNull())
    .addColumn('lead_id', 'text', (c) => c.notNull())
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('lead_keys_pk', ['lead_id', 'key_value'])
    .execute()
  await db.schema
    .createIndex('lead_keys_value')
    .on('lead_keys')
    .columns(['account_id', 'key_value', 'received_at'])
    .execute()

  await db.schema
    .createTable('idempotency_keys')
    .addColumn('integration_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('lead_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['integration_id', 'key'])
    .execute()

  await db.schema
    .createTable('jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('subject_id', 'text', (c) => c.notNull())
    .addColumn('run_at', 'bigint', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_attempts', 'integer', (c) => c.notNull())
    .addColumn('locked_by', 'text')
    .addColumn('locked_until', 'bigint')
    .addColumn('last_error', 'text')
    .addColumn('dead_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('jobs_runnable')
    .on('jobs')
    .columns(['run_at', 'id'])
    .where(sql.ref('dead_at'), 'is', null)
    .execute()
  await db.schema.createIndex('jobs_subject').on('jobs').columns(['subject_id']).execute()

  await db.schema
    .createTable('prospects')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('group_id', 'text', (c) => c.notNull())
    .addColumn('initial_group_id', 'text', (c) => c.notNull())
    .addColumn('first_name', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('last_name', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('category', 'text', (c) => c.notNull())
    .addColumn('label', 'text')
    .addColumn('details', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('phones', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('emails', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('additional_data', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('agent_id', 'text')
    .addColumn('assigned_at', 'bigint')
    .addColumn('transferred_at', 'bigint')
    .addColumn('absence_message', 'text')
    .addColumn('archiving_reason', 'text')
    .addColumn('user_made', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('previous_prospect_id', 'text')
    .addColumn('merged_into', 'text')
    .addColumn('sequence', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('prospects_account').on('prospects').columns(['account_id', 'id']).execute()
  await db.schema.createIndex('prospects_group').on('prospects').columns(['group_id', 'id']).execute()
  await db.schema.createIndex('prospects_agent').on('prospects').columns(['agent_id', 'status']).execute()

  // Match keys of prospects. Only active prospects hold active keys, and the partial unique index
  // makes "one active prospect per key per account" a fact the database enforces: two workers
  // that race to create a prospect for the same phone cannot both commit (identity.md §6).
  await db.schema
    .createTable('prospect_keys')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('key_type', 'text', (c) => c.notNull())
    .addColumn('key_value', 'text', (c) => c.notNull())
    .addColumn('prospect_id', 'text', (c) => c.notNull())
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
    .execute()
  await db.schema
    .createIndex('prospect_keys_active')
    .unique()
    .on('prospect_keys')
    .columns(['account_id', 'key_type', 'key_value'])
    .where(sql.ref('active'), '=', 1)
    .execute()
  await db.schema
    .createIndex('prospect_keys_value')
    .on('prospect_keys')
    .columns(['account_id', 'key_value'])
    .execute()
  await db.schema.createIndex('prospect_keys_prospect').on('prospect_keys').columns(['prospect_id']).execute()

  await db.schema
    .createTable('interactions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('prospect_id', 'text', (c) => c.notNull())
    .addColumn('lead_id', 'text')
    .addColumn('agent_id', 'text')
    .addColumn('via', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('output', 'text', (c) => c.notNull())
    .addColumn('proactive', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('interactions_prospect')
    .on('interactions')
    .columns(['prospect_id', 'id'])
    .execute()
  await db.schema.createIndex('interactions_lead').on('interactions').columns(['lead_id']).execute()

  await db.schema
    .createTable('merges')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('survivor_id', 'text', (c) => c.notNull())
    .addColumn('merged_prospect_ids', 'text', (c) => c.notNull())
    .addColumn('lead_id', 'text')
    .addColumn('keys', 'text', (c) => c.notNull())
    .addColumn('skipped_keys', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('merges_survivor').on('merges').columns(['survivor_id', 'at']).execute()

  await db.schema
    .createTable('events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('group_id', 'text', (c) => c.notNull())
    .addColumn('topic', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('subject_id', 'text', (c) => c.notNull())
    .addColumn('sequence', 'integer')
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('events_subject').on('events').columns(['subject_id', 'id']).execute()

  await db.schema
    .createTable('blocked_values')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('blocked_values_pk', ['account_id', 'kind', 'value'])
    .execute()

  await db.schema
    .alterTable('groups')
    .addColumn('round_robin_turn', 'integer', (c) => c.notNull().defaultTo(0))
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('groups').dropColumn('round_robin_turn').execute()
  for (const table of [
    'blocked_values',
    'events',
    'merges',
    'interactions',
    'prospect_keys',
    'prospects',
    'jobs',
    'idempotency_keys',
    'leads',
  ]) {
    await db.schema.dropTable(table).execute()
  }
}
