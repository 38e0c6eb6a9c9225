import type { Selectable } from 'kysely'
import { open, seal } from '../domain/secret-box.js'
import { engineOf } from './connect.js'
import { type Executor, reusable, type SubscriptionsTable, type Tx } from './database.js'

export type Topic = 'prospects' | 'interactions' | 'quotes' | 'agents' | 'leads'

/** A subscription with its secrets opened (they are stored sealed under the server's key). */
export type Subscription = Omit<
  Selectable<SubscriptionsTable>,
  'topics' | 'active' | 'secret' | 'previousSecret'
> & {
  topics: Topic[]
  active: boolean
  secret: string
  previousSecret: string | null
}

function fromRow(row: Selectable<SubscriptionsTable>, key: Buffer): Subscription {
  return {
    ...row,
    topics: JSON.parse(row.topics),
    active: row.active === 1,
    secret: open(row.secret, key),
    previousSecret: row.previousSecret === null ? null : open(row.previousSecret, key),
  }
}

export async function insertSubscription(
  db: Executor,
  subscription: Subscription,
  key: Buffer,
): Promise<void> {
  await db
    .insertInto('subscriptions')
    .values({
      ...subscription,
      topics: JSON.stringify(subscription.topics),
      active: subscription.active ? 1 : 0,
      secret: seal(subscription.secret, key),
      previousSecret: subscription.previousSecret === null ? null : seal(subscription.previousSecret, key),
    })
    .execute()
}

export async function findSubscription(
  db: Executor,
  accountId: string,
  id: string,
  key: Buffer,
): Promise<Subscription | undefined> {
  const row = await db
    .selectFrom('subscriptions')
    .selectAll()
    .where('accountId', '=', accountId)
    .where('id', '=', id)
    .executeTakeFirst()
  return row && fromRow(row, key)
}

/** Active subscriptions whose group is `rootGroupId` or below it (what a key of that group sees). */
export async function listActiveSubscriptions(
  db: Executor,
  accountId: string,
  rootGroupId: string,
  key: Buffer,
): Promise<Subscription[]> {
  const rows = await db
    .selectFrom('subscriptions')
    .innerJoin('groupClosure', 'groupClosure.descendantId', 'subscriptions.groupId')
    .selectAll('subscriptions')
    .where('subscriptions.accountId', '=', accountId)
    .where('groupClosure.ancestorId', '=', rootGroupId)
    .where('subscriptions.active', '=', 1)
    .orderBy('subscriptions.id')
    .execute()
  return rows.map((row) => fromRow(row, key))
}

export type Listener = { id: string; groupId: string; topics: Topic[]; seesGroupId: string }

/**
 * Active subscriptions that see events of any of `groupIds`: their group is that group or one of
 * its ancestors (webhooks.md §2). One row per subscription and group it sees.
 */
export async function findListeners(
  db: Executor,
  accountId: string,
  groupIds: string[],
): Promise<Listener[]> {
  if (groupIds.length === 0) return []
  const rows = await db
    .selectFrom('subscriptions')
    .innerJoin('groupClosure', 'groupClosure.ancestorId', 'subscriptions.groupId')
    .select(['subscriptions.id', 'subscriptions.groupId', 'subscriptions.topics'])
    .select('groupClosure.descendantId as seesGroupId')
    .where('subscriptions.accountId', '=', accountId)
    .where('groupClosure.descendantId', 'in', groupIds)
    .where('subscriptions.active', '=', 1)
    .execute()
  return rows.map((row) => ({ ...row, topics: JSON.parse(row.topics) }))
}

/** Subscriptions by id with their secrets opened (the sender signs with them). */
export async function findSubscriptionsByIds(
  db: Executor,
  ids: string[],
  key: Buffer,
): Promise<Map<string, Subscription>> {
  if (ids.length === 0) return new Map()
  const rows = await db.selectFrom('subscriptions').selectAll().where('id', 'in', ids).execute()
  return new Map(rows.map((row) => [row.id, fromRow(row, key)]))
}

/**
 * Deactivates subscriptions and fails their pending deliveries (they are kept for redelivery);
 * returns how many subscriptions were active. `reason` is shown in the delivery log.
 */
export async function deactivateSubscriptions(
  db: Executor,
  ids: string[],
  reason: string,
  at: number,
): Promise<number> {
  if (ids.length === 0) return 0
  // Rows locked in id order, as the attempt recorder locks them, so the two never deadlock.
  if (engineOf(db) === 'postgres')
    await db
      .selectFrom('subscriptions')
      .select('id')
      .where('id', 'in', ids)
      .orderBy('id')
      .forUpdate()
      .execute()
  const result = await db
    .updateTable('subscriptions')
    .set({ active: 0, deactivatedAt: at, deactivationReason: reason })
    .where('id', 'in', ids)
    .where('active', '=', 1)
    .executeTakeFirst()
  await db
    .updateTable('deliveries')
    .set({
      status: 'failed',
      nextAttemptAt: null,
      lockedBy: null,
      lockedUntil: null,
      lastError: `subscription deactivated: ${reason}`,
      updatedAt: at,
    })
    .where('subscriptionId', 'in', ids)
    .where('status', '=', 'pending')
    .execute()
  return Number(result.numUpdatedRows)
}

/** Ids of the active subscriptions of exactly `groupId` (the one-per-group rule works on these). */
export async function activeSubscriptionIdsOfGroup(
  db: Executor,
  accountId: string,
  groupId: string,
): Promise<string[]> {
  const rows = await db
    .selectFrom('subscriptions')
    .select('id')
    .where('accountId', '=', accountId)
    .where('groupId', '=', groupId)
    .where('active', '=', 1)
    .execute()
  return rows.map((r) => r.id)
}

/** A new secret signs from now on; the current one keeps signing beside it until `until`. */
export async function replaceSecret(
  db: Executor,
  subscription: Subscription,
  secret: string,
  until: number,
  key: Buffer,
): Promise<void> {
  await db
    .updateTable('subscriptions')
    .set({
      secret: seal(secret, key),
      previousSecret: seal(subscription.secret, key),
      previousSecretUntil: until,
    })
    .where('id', '=', subscription.id)
    .execute()
}

/**
 * Locks a subscription's row for the rest of the transaction (PostgreSQL; SQLite's write
 * transaction already holds the database) and reads what the 5-day rule needs. Everything that
 * changes a subscription and its deliveries together takes this lock first, so two such
 * transactions never lock in opposite orders.
 */
export async function lockSubscription(
  tx: Tx,
  id: string,
): Promise<{ active: boolean; failingSince: number | null } | undefined> {
  const [row] = (await lockOne(tx, { id })).rows
  return row && { active: row.active === 1, failingSince: row.failingSince }
}

/** Every batch of attempt records runs it: compiled once per engine. */
const lockOne = reusable((db, v: { id: string }) => {
  const query = db.selectFrom('subscriptions').select(['active', 'failingSince']).where('id', '=', v.id)
  return engineOf(db) === 'postgres' ? query.forUpdate() : query
})

/** Since when every attempt has failed (null after a success): the start of the 5-day count. */
export async function setFailingSince(db: Executor, id: string, since: number | null): Promise<void> {
  await db.updateTable('subscriptions').set({ failingSince: since }).where('id', '=', id).execute()
}

/** The secrets that sign at `at`: the current one, and the previous one while its 24 h last. */
export function signingSecrets(subscription: Subscription, at: number): string[] {
  const previous =
    subscription.previousSecret !== null && (subscription.previousSecretUntil ?? 0) > at
      ? [subscription.previousSecret]
      : []
  return [subscription.secret, ...previous]
}
