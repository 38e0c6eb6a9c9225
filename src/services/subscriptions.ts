import { newId } from '../domain/ids.js'
import { fail, ok, type Result } from '../domain/result.js'
import { generateWebhookSecret } from '../domain/signature.js'
import { findAccount } from '../store/accounts.js'
import { type Db, inTransaction } from '../store/database.js'
import { type Delivery, findDelivery, requeueDeliveries } from '../store/deliveries.js'
import { isInSubtree, lockGroup } from '../store/groups.js'
import type { Integration } from '../store/integrations.js'
import {
  activeSubscriptionIdsOfGroup,
  deactivateSubscriptions,
  findSubscription,
  insertSubscription,
  lockSubscription,
  replaceSecret,
  type Subscription,
  type Topic,
} from '../store/subscriptions.js'

/** How long a rotated-out secret keeps signing beside the new one (webhooks.md §3). */
export const SECRET_OVERLAP_MS = 24 * 3_600_000

/**
 * A new subscription for the key's group (webhooks.md §2). By default a group has one active
 * subscription, as in the original API: subscribing again deactivates the previous ones. An
 * account whose settings say `webhookFanOut` keeps them all. The caller has checked the URL.
 */
export async function subscribe(
  db: Db,
  integration: Integration,
  input: { topics: Topic[]; callbackUrl: string },
  key: Buffer,
  at: number,
): Promise<Subscription> {
  const subscription: Subscription = {
    id: newId(at),
    accountId: integration.accountId,
    groupId: integration.groupId,
    integrationId: integration.id,
    topics: input.topics,
    callbackUrl: input.callbackUrl,
    secret: generateWebhookSecret(),
    previousSecret: null,
    previousSecretUntil: null,
    active: true,
    failingSince: null,
    deactivatedAt: null,
    deactivationReason: null,
    createdAt: at,
  }
  await inTransaction(db, async (tx) => {
    // Two subscribe calls at once must not leave two active: they take turns on the group's row.
    await lockGroup(tx, integration.groupId)
    const account = await findAccount(tx, integration.accountId)
    if (!account?.settings.webhookFanOut) {
      const previous = await activeSubscriptionIdsOfGroup(tx, integration.accountId, integration.groupId)
      await deactivateSubscriptions(tx, previous, `replaced by subscription ${subscription.id}`, at)
    }
    await insertSubscription(tx, subscription, key)
  })
  return subscription
}

/** A subscription this key may see: its account, a group in the key's subtree. */
export async function findVisibleSubscription(
  db: Db,
  integration: Integration,
  id: string,
  key: Buffer,
): Promise<Subscription | undefined> {
  const subscription = await findSubscription(db, integration.accountId, id, key)
  if (!subscription || !(await isInSubtree(db, integration.groupId, subscription.groupId))) return undefined
  return subscription
}

export async function findVisibleDelivery(
  db: Db,
  integration: Integration,
  id: string,
): Promise<Delivery | undefined> {
  const delivery = await findDelivery(db, integration.accountId, id)
  if (!delivery) return undefined
  const owner = await db
    .selectFrom('subscriptions')
    .select('groupId')
    .where('id', '=', delivery.subscriptionId)
    .executeTakeFirst()
  return owner && (await isInSubtree(db, integration.groupId, owner.groupId)) ? delivery : undefined
}

export async function unsubscribe(db: Db, subscription: Subscription, at: number): Promise<Subscription> {
  await deactivateSubscriptions(db, [subscription.id], 'deleted through the API', at)
  return subscription.active
    ? { ...subscription, active: false, deactivatedAt: at, deactivationReason: 'deleted through the API' }
    : subscription
}

/** `DELETE /notifications/subscriptions`: the key's own group's active subscriptions. */
export async function unsubscribeGroup(db: Db, integration: Integration, at: number): Promise<number> {
  return inTransaction(db, async (tx) => {
    await lockGroup(tx, integration.groupId)
    const ids = await activeSubscriptionIdsOfGroup(tx, integration.accountId, integration.groupId)
    return deactivateSubscriptions(tx, ids, 'deleted through the API', at)
  })
}

/**
 * A new secret; the current one keeps signing beside it for 24 h, so receivers can switch without
 * losing a delivery. Rotating again within the 24 h drops the oldest secret.
 */
export async function rotateSecret(
  db: Db,
  subscription: Subscription,
  key: Buffer,
  at: number,
): Promise<Result<Subscription>> {
  return inTransaction(db, async (tx) => {
    // Read under the row lock: two rotations at once must chain, not both replace the same secret.
    await lockSubscription(tx, subscription.id)
    const current = await findSubscription(tx, subscription.accountId, subscription.id, key)
    if (!current?.active) return fail('CONFLICT', inactive(current ?? subscription))
    const secret = generateWebhookSecret()
    await replaceSecret(tx, current, secret, at + SECRET_OVERLAP_MS, key)
    return ok({
      ...current,
      secret,
      previousSecret: current.secret,
      previousSecretUntil: at + SECRET_OVERLAP_MS,
    })
  })
}

/** Queues one delivery again now, same `operationId`, for a fresh run of the retry schedule. */
export async function redeliver(
  db: Db,
  delivery: Delivery,
  subscription: Subscription,
  at: number,
): Promise<Result<number>> {
  if (!subscription.active) return fail('CONFLICT', inactive(subscription))
  return ok(await requeueDeliveries(db, { ids: [delivery.id] }, at))
}

/** Queues again every failed delivery of a subscription created since `since`. */
export async function recover(
  db: Db,
  subscription: Subscription,
  since: number,
  at: number,
): Promise<Result<number>> {
  if (!subscription.active) return fail('CONFLICT', inactive(subscription))
  return ok(await requeueDeliveries(db, { subscriptionId: subscription.id, failedSince: since }, at))
}

function inactive(subscription: Subscription): string {
  return `Subscription ${subscription.id} is inactive (${subscription.deactivationReason ?? 'deactivated'}); subscribe again to receive events`
}
