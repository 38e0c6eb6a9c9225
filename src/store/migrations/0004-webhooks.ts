import { type Kysely, sql } from 'kysely'

/**
 * Webhooks (webhooks.md): subscriptions, and the delivery log as event → one delivery per
 * matching subscription → its attempts. The outbox gains `dispatched_at` (null until the event
 * has been turned into deliveries) and `body`, the objects rendered once at dispatch so every
 * subscription and every retry sends the same thing.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('events').addColumn('dispatched_at', 'bigint').execute()
  await db.schema.alterTable('events').addColumn('body', 'text').execute()
  // The dispatcher reads undispatched events oldest first; the index holds only those.
  await db.schema
    .createIndex('events_undispatched')
    .on('events')
    .column('id')
    .where(sql.ref('dispatched_at'), 'is', null)
    .execute()

  await db.schema
    .createTable('subscriptions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('group_id', 'text', (c) => c.notNull())
    .addColumn('integration_id', 'text', (c) => c.notNull())
    .addColumn('topics', 'text', (c) => c.notNull())
    .addColumn('callback_url', 'text', (c) => c.notNull())
    // Sealed with the server's secret key: the plain secret is needed to sign.
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('previous_secret', 'text')
    .addColumn('previous_secret_until', 'bigint')
    .addColumn('active', 'integer', (c) => c.notNull())
    .addColumn('failing_since', 'bigint')
    .addColumn('deactivated_at', 'bigint')
    .addColumn('deactivation_reason', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('subscriptions_group')
    .on('subscriptions')
    .columns(['account_id', 'group_id', 'active'])
    .execute()

  await db.schema
    .createTable('deliveries')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('subscription_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('topic', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint')
    .addColumn('locked_by', 'text')
    .addColumn('locked_until', 'bigint')
    .addColumn('last_status_code', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('delivered_at', 'bigint')
    // Set only when this subscription may not see everything the event's body shows (a lead of its
    // group merged into a prospect of a group it cannot see): the narrowed objects it gets instead.
    .addColumn('body', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute()
  // One delivery per event and subscription; also finds an event's deliveries (retention).
  await db.schema
    .createIndex('deliveries_event')
    .unique()
    .on('deliveries')
    .columns(['event_id', 'subscription_id'])
    .execute()
  // The sender's queue: only pending rows, by due time.
  await db.schema
    .createIndex('deliveries_due')
    .on('deliveries')
    .columns(['next_attempt_at'])
    .where(sql.ref('status'), '=', 'pending')
    .execute()
  await db.schema
    .createIndex('deliveries_subscription')
    .on('deliveries')
    .columns(['subscription_id', 'id'])
    .execute()
  await db.schema.createIndex('deliveries_account').on('deliveries').columns(['account_id', 'id']).execute()
  await db.schema.createIndex('deliveries_age').on('deliveries').columns(['status', 'updated_at']).execute()

  await db.schema
    .createTable('delivery_attempts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('delivery_id', 'text', (c) => c.notNull())
    .addColumn('number', 'integer', (c) => c.notNull())
    .addColumn('sent_at', 'bigint', (c) => c.notNull())
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('response_body', 'text')
    .addColumn('error', 'text')
    .execute()
  await db.schema
    .createIndex('delivery_attempts_delivery')
    .on('delivery_attempts')
    .columns(['delivery_id', 'id'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['delivery_attempts', 'deliveries', 'subscriptions']) {
    await db.schema.dropTable(table).execute()
  }
  await db.schema.dropIndex('events_undispatched').execute()
  await db.schema.alterTable('events').dropColumn('body').execute()
  await db.schema.alterTable('events').dropColumn('dispatched_at').execute()
}
