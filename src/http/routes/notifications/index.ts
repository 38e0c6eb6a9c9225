import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import {
  findVisibleDelivery,
  findVisibleSubscription,
  recover,
  redeliver,
  rotateSecret,
  subscribe,
  unsubscribe,
  unsubscribeGroup,
} from '../../../services/subscriptions.js'
import { findAttempts, findDelivery, listDeliveries } from '../../../store/deliveries.js'
import type { Integration } from '../../../store/integrations.js'
import { listActiveSubscriptions, type Topic } from '../../../store/subscriptions.js'
import { checkCallbackUrl } from '../../../webhooks/sender.js'
import { notFound, orThrow, schemaError } from '../../errors.js'
import { FormatQuery } from '../../formats.js'
import { paginate, sendPages } from '../../listing.js'
import { principal } from '../../plugins/auth.js'
import { authErrors, DateTimeSchema, ObjectIdSchema } from '../../schemas/common.js'
import {
  DeliverySchema,
  NewSubscriptionSchema,
  SubscriptionSchema,
  TOPICS,
  TopicNameSchema,
  TopicSchema,
  toDelivery,
  toSubscription,
} from '../../schemas/notification.js'

const errors = { 400: Type.Ref('Error'), 404: Type.Ref('Error'), ...authErrors }
const SubscriptionParams = Type.Object({ subscriptionId: ObjectIdSchema })
const DeliveryParams = Type.Object({ deliveryId: ObjectIdSchema })
const config = { scope: 'notifications' as const }
const tags = ['Notifications']

/** Webhook subscriptions and the delivery log (api.md §7, webhooks.md). */
const routes: FastifyPluginAsyncTypebox = async (app) => {
  async function visibleSubscription(integration: Integration, id: string) {
    const subscription = await findVisibleSubscription(app.db, integration, id, app.secretKey)
    if (!subscription) throw notFound('Subscription')
    return subscription
  }

  app.get(
    '/notifications/topics',
    {
      config,
      schema: {
        summary: 'The topics a subscription can listen to',
        tags,
        response: { 200: Type.Array(TopicSchema), ...authErrors },
      },
    },
    async () => Object.entries(TOPICS).map(([name, description]) => ({ name: name as Topic, description })),
  )

  app.get(
    '/notifications/subscriptions',
    {
      config,
      schema: {
        summary: 'Active subscriptions of the key’s group and the groups below it',
        tags,
        response: { 200: Type.Array(SubscriptionSchema), ...authErrors },
      },
    },
    async (request) => {
      const integration = principal(request)
      const found = await listActiveSubscriptions(
        app.db,
        integration.accountId,
        integration.groupId,
        app.secretKey,
      )
      return found.map((s) => toSubscription(s))
    },
  )

  app.post(
    '/notifications/subscriptions',
    {
      config,
      schema: {
        summary: 'Subscribe the key’s group to topics',
        description:
          'By default a group has one active subscription: subscribing again deactivates the previous one (as in the original API); an account with webhook fan-out keeps them all. The answer carries the signing `secret`, shown only here and on rotation.',
        tags,
        body: NewSubscriptionSchema,
        response: { 201: SubscriptionSchema, ...errors },
      },
    },
    async (request, reply) => {
      const integration = principal(request)
      const { topics, callbackUrl } = request.body
      const refusal = await checkCallbackUrl(callbackUrl, { allowPrivate: app.config.webhookAllowPrivate })
      if (refusal) throw schemaError([{ path: '/callbackUrl', message: refusal, in: 'body' }])
      const subscription = await subscribe(
        app.db,
        integration,
        { topics, callbackUrl },
        app.secretKey,
        app.now(),
      )
      return reply.status(201).send(toSubscription(subscription, { secret: true }))
    },
  )

  app.delete(
    '/notifications/subscriptions',
    {
      config,
      schema: {
        summary: 'Deactivate every active subscription of the key’s own group',
        tags,
        response: { 200: Type.Object({ modified: Type.Integer() }), ...authErrors },
      },
    },
    async (request) => ({ modified: await unsubscribeGroup(app.db, principal(request), app.now()) }),
  )

  app.get(
    '/notifications/subscription/:subscriptionId',
    {
      config,
      schema: {
        summary: 'One subscription, active or not',
        tags,
        params: SubscriptionParams,
        response: { 200: SubscriptionSchema, ...errors },
      },
    },
    async (request) =>
      toSubscription(await visibleSubscription(principal(request), request.params.subscriptionId)),
  )

  app.delete(
    '/notifications/subscription/:subscriptionId',
    {
      config,
      schema: {
        summary: 'Deactivate a subscription',
        tags,
        params: SubscriptionParams,
        response: { 200: SubscriptionSchema, ...errors },
      },
    },
    async (request) => {
      const subscription = await visibleSubscription(principal(request), request.params.subscriptionId)
      return toSubscription(await unsubscribe(app.db, subscription, app.now()))
    },
  )

  app.post(
    '/notifications/subscription/:subscriptionId/rotate-secret',
    {
      config,
      schema: {
        summary: 'A new signing secret (ext)',
        description:
          'The answer carries the new `secret`. The old one keeps signing beside it for 24 h (both signatures are sent); rotating again within those 24 h drops the oldest.',
        tags,
        params: SubscriptionParams,
        response: { 200: SubscriptionSchema, 409: Type.Ref('Error'), ...errors },
      },
    },
    async (request) => {
      const subscription = await visibleSubscription(principal(request), request.params.subscriptionId)
      return toSubscription(orThrow(await rotateSecret(app.db, subscription, app.secretKey, app.now())), {
        secret: true,
      })
    },
  )

  app.post(
    '/notifications/subscription/:subscriptionId/recover',
    {
      config,
      schema: {
        summary: 'Send again every failed delivery since a time (ext)',
        tags,
        params: SubscriptionParams,
        querystring: Type.Object({ since: DateTimeSchema }),
        response: { 202: Type.Object({ queued: Type.Integer() }), 409: Type.Ref('Error'), ...errors },
      },
    },
    async (request, reply) => {
      const subscription = await visibleSubscription(principal(request), request.params.subscriptionId)
      const queued = orThrow(await recover(app.db, subscription, Date.parse(request.query.since), app.now()))
      app.webhookWorker?.queued()
      return reply.status(202).send({ queued })
    },
  )

  app.get(
    '/notifications/deliveries',
    {
      config,
      schema: {
        summary: 'The delivery log, newest first (ext)',
        description:
          '`before` is the id of the last delivery of the previous page (also given in the `Link` header).',
        tags,
        querystring: Type.Object({
          subscription: Type.Optional(ObjectIdSchema),
          status: Type.Optional(Type.Enum(['pending', 'delivered', 'failed'])),
          topic: Type.Optional(TopicNameSchema),
          before: Type.Optional(ObjectIdSchema),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'default 100' })),
          ...FormatQuery,
        }),
        response: { 200: Type.Array(DeliverySchema), ...errors },
      },
    },
    async (request, reply) => {
      const q = request.query
      const integration = principal(request)
      const limit = q.limit ?? 100
      const filter = {
        accountId: integration.accountId,
        rootGroupId: integration.groupId,
        subscriptionId: q.subscription,
        status: q.status,
        topic: q.topic,
      }
      const pages = paginate(
        (before, size) => listDeliveries(app.db, { ...filter, before, limit: size }),
        async (page) => page.map((d) => toDelivery(d)),
        limit,
        q.before,
      )
      return sendPages(request, reply, DeliverySchema, pages, limit)
    },
  )

  app.get(
    '/notifications/delivery/:deliveryId',
    {
      config,
      schema: {
        summary: 'A delivery with its attempts (ext)',
        tags,
        params: DeliveryParams,
        response: { 200: DeliverySchema, ...errors },
      },
    },
    async (request) => {
      const delivery = await findVisibleDelivery(app.db, principal(request), request.params.deliveryId)
      if (!delivery) throw notFound('Delivery')
      return toDelivery(delivery, await findAttempts(app.db, delivery.id))
    },
  )

  app.post(
    '/notifications/delivery/:deliveryId/redeliver',
    {
      config,
      schema: {
        summary: 'Send a delivery again now, same operationId (ext)',
        tags,
        params: DeliveryParams,
        response: { 202: DeliverySchema, 409: Type.Ref('Error'), ...errors },
      },
    },
    async (request, reply) => {
      const integration = principal(request)
      const delivery = await findVisibleDelivery(app.db, integration, request.params.deliveryId)
      if (!delivery) throw notFound('Delivery')
      const subscription = await visibleSubscription(integration, delivery.subscriptionId)
      orThrow(await redeliver(app.db, delivery, subscription, app.now()))
      app.webhookWorker?.queued()
      const queued = await findDelivery(app.db, integration.accountId, delivery.id)
      return reply.status(202).send(toDelivery(queued ?? delivery))
    },
  )
}

export default routes
