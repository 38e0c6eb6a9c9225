import { type Static, Type } from 'typebox'
import type { Delivery, DeliveryAttempt } from '../../store/deliveries.js'
import type { Subscription, Topic } from '../../store/subscriptions.js'
import { DateTimeSchema, iso, ObjectIdSchema } from './common.js'

/** The topics of webhooks.md §1, with the line `GET /notifications/topics` shows for each. */
export const TOPICS: Record<Topic, string> = {
  prospects: 'Prospects created, updated, merged, assigned, transferred, archived or deleted',
  interactions: 'Interactions created or updated on a prospect',
  quotes: 'Quotes created or updated on a prospect',
  agents: 'Agents created, or whose working state changed',
  leads: 'The result of each lead sent to the asynchronous API: processed (with its prospect) or rejected',
}

export const TopicNameSchema = Type.Enum(Object.keys(TOPICS) as Topic[])

export const TopicSchema = Type.Object(
  { name: TopicNameSchema, description: Type.String() },
  { $id: 'Topic' },
)

export const NewSubscriptionSchema = Type.Object(
  {
    topics: Type.Array(TopicNameSchema, { minItems: 1, uniqueItems: true }),
    callbackUrl: Type.String({
      minLength: 1,
      maxLength: 2048,
      description:
        'http(s) URL; may carry its own query string. It may not resolve to a private, loopback, link-local or unique-local address unless VENTAS_WEBHOOK_ALLOW_PRIVATE=true.',
    }),
  },
  { additionalProperties: false },
)

export const SubscriptionSchema = Type.Object(
  {
    id: ObjectIdSchema,
    topics: Type.Array(TopicNameSchema),
    callbackUrl: Type.String(),
    groupId: Type.Optional(ObjectIdSchema),
    active: Type.Optional(Type.Boolean()),
    secret: Type.Optional(
      Type.String({
        description:
          'ext: the Standard Webhooks signing secret (whsec_…). Shown when the subscription is created and when its secret is rotated, never again.',
      }),
    ),
    createdAt: Type.Optional(DateTimeSchema),
    deactivatedAt: Type.Optional(DateTimeSchema),
    deactivationReason: Type.Optional(Type.String({ description: 'ext: why it stopped, e.g. 410 Gone' })),
    previousSecretValidUntil: Type.Optional(DateTimeSchema),
  },
  { $id: 'Subscription', title: 'Subscription' },
)

export const DeliveryAttemptSchema = Type.Object({
  number: Type.Integer({ description: 'the attempt number the receiver saw in `attempts`' }),
  sentAt: DateTimeSchema,
  durationMs: Type.Integer(),
  statusCode: Type.Optional(Type.Integer()),
  responseBody: Type.Optional(Type.String({ description: 'the first 4 KiB' })),
  error: Type.Optional(Type.String()),
})

export const DeliverySchema = Type.Object(
  {
    id: ObjectIdSchema,
    subscriptionId: ObjectIdSchema,
    operationId: Type.String({ description: 'the event id, sent as webhook-id' }),
    topic: TopicNameSchema,
    type: Type.String(),
    status: Type.Enum(['pending', 'delivered', 'failed']),
    attemptCount: Type.Integer(),
    createdAt: DateTimeSchema,
    updatedAt: DateTimeSchema,
    nextAttemptAt: Type.Optional(DateTimeSchema),
    deliveredAt: Type.Optional(DateTimeSchema),
    lastStatusCode: Type.Optional(Type.Integer()),
    lastError: Type.Optional(Type.String()),
    attempts: Type.Optional(
      Type.Array(DeliveryAttemptSchema, { description: 'in GET /notifications/delivery/{id}' }),
    ),
  },
  { $id: 'Delivery', title: 'Delivery' },
)

export type SubscriptionView = Static<typeof SubscriptionSchema>
export type DeliveryView = Static<typeof DeliverySchema>

export function toSubscription(
  subscription: Subscription,
  options: { secret?: boolean } = {},
): SubscriptionView {
  const s = subscription
  return {
    id: s.id,
    topics: s.topics,
    callbackUrl: s.callbackUrl,
    groupId: s.groupId,
    active: s.active,
    ...(options.secret ? { secret: s.secret } : {}),
    createdAt: iso(s.createdAt),
    ...(s.deactivatedAt !== null ? { deactivatedAt: iso(s.deactivatedAt) } : {}),
    ...(s.deactivationReason !== null ? { deactivationReason: s.deactivationReason } : {}),
    ...(s.previousSecretUntil !== null ? { previousSecretValidUntil: iso(s.previousSecretUntil) } : {}),
  }
}

export function toDelivery(delivery: Delivery, attempts?: DeliveryAttempt[]): DeliveryView {
  const d = delivery
  return {
    id: d.id,
    subscriptionId: d.subscriptionId,
    operationId: d.eventId,
    topic: d.topic as Topic,
    type: d.type,
    status: d.status,
    attemptCount: d.attempts,
    createdAt: iso(d.createdAt),
    updatedAt: iso(d.updatedAt),
    ...(d.nextAttemptAt !== null && d.status === 'pending' ? { nextAttemptAt: iso(d.nextAttemptAt) } : {}),
    ...(d.deliveredAt !== null ? { deliveredAt: iso(d.deliveredAt) } : {}),
    ...(d.lastStatusCode !== null ? { lastStatusCode: d.lastStatusCode } : {}),
    ...(d.lastError !== null ? { lastError: d.lastError } : {}),
    ...(attempts
      ? {
          attempts: attempts.map((a) => ({
            number: a.number,
            sentAt: iso(a.sentAt),
            durationMs: a.durationMs,
            ...(a.statusCode !== null ? { statusCode: a.statusCode } : {}),
            ...(a.responseBody !== null ? { responseBody: a.responseBody } : {}),
            ...(a.error !== null ? { error: a.error } : {}),
          })),
        }
      : {}),
  }
}
