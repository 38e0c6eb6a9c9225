import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { viewInteractions } from '../../../services/prospect-views.js'
import { addInteraction } from '../../../services/prospects.js'
import { findVisibleProspect } from '../../../services/visibility.js'
import type { Integration } from '../../../store/integrations.js'
import { findInteraction, listInteractions } from '../../../store/interactions.js'
import { notFound } from '../../errors.js'
import { FormatQuery, sendList } from '../../formats.js'
import { dateQuery, dateRanges, PageQuery, paginate, sendPages } from '../../listing.js'
import { principal } from '../../plugins/auth.js'
import { authErrors, ObjectIdSchema } from '../../schemas/common.js'
import { NewEventSchema } from '../../schemas/lead.js'
import { InteractionSchema } from '../../schemas/prospect.js'

const VIA = [
  'inboundCall',
  'outboundCall',
  'whatsApp',
  'sms',
  'email',
  'walkIn',
  'visit',
  'other',
  'testDrive',
  'phoneCall',
  'facebook',
  'instagram',
  'webAction',
  'customApp',
] as const
const filterQuery = {
  status: Type.Optional(Type.Enum(['created', 'updated'])),
  via: Type.Optional(Type.Array(Type.Enum(VIA), { description: 'repeat to match any (also sent as via[])' })),
  'via[]': Type.Optional(Type.Array(Type.Enum(VIA))),
  ...dateQuery(['created']),
}
const ProspectParams = Type.Object({ prospectId: ObjectIdSchema })
const errors = { 400: Type.Ref('Error'), 404: Type.Ref('Error'), ...authErrors }

/** Interactions (api.md §4): the account-wide list newest first, a prospect's oldest first, one, and new ones. */
const routes: FastifyPluginAsyncTypebox = async (app) => {
  /** The prospect an id names for this key (a merged id answers for its survivor), or 404. */
  async function visibleProspectId(integration: Integration, id: string): Promise<string> {
    const prospect = await findVisibleProspect(app.db, integration, id)
    if (!prospect) throw notFound('Prospect')
    return prospect.id
  }

  const viaOf = (q: { via?: string[]; 'via[]'?: string[] }) => [...(q.via ?? []), ...(q['via[]'] ?? [])]

  app.get(
    '/prospects/interactions',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: 'Interactions of the key’s group subtree, newest first',
        description: 'The 31-day rule of GET /prospects applies to createdAfter/createdBefore.',
        tags: ['Interactions'],
        querystring: Type.Object({ agent: Type.Optional(ObjectIdSchema), ...filterQuery, ...PageQuery }),
        response: { 200: Type.Array(InteractionSchema), ...errors },
      },
    },
    async (request, reply) => {
      const q = request.query
      const integration = principal(request)
      const { created } = dateRanges(q, ['created'], 'created', app.now())
      const limit = q.limit ?? 100
      const filter = {
        accountId: integration.accountId,
        rootGroupId: integration.groupId,
        agentId: q.agent,
        status: q.status,
        via: viaOf(q),
        created,
        after: q.after,
        order: 'desc' as const,
      }
      const pages = paginate(
        (before, size) => listInteractions(app.db, { ...filter, before, limit: size }),
        (page) => viewInteractions(app.db, page),
        limit,
        q.before,
      )
      return sendPages(request, reply, InteractionSchema, pages, limit)
    },
  )

  app.get(
    '/prospect/:prospectId/interactions',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: 'A prospect’s interactions, oldest first',
        tags: ['Interactions'],
        params: ProspectParams,
        querystring: Type.Object({ ...filterQuery, ...FormatQuery }),
        response: { 200: Type.Array(InteractionSchema), ...errors },
      },
    },
    async (request, reply) => {
      const q = request.query
      const integration = principal(request)
      const prospectId = await visibleProspectId(integration, request.params.prospectId)
      // A prospect's own history is small and wanted whole: no window, no page size.
      const { created } = dateRanges(q, ['created'], null, app.now())
      const filter = {
        accountId: integration.accountId,
        rootGroupId: integration.groupId,
        prospectId,
        status: q.status,
        via: viaOf(q),
        created,
        order: 'asc' as const,
      }
      const pages = paginate(
        (after, size) => listInteractions(app.db, { ...filter, after, limit: size }),
        (page) => viewInteractions(app.db, page),
        Number.MAX_SAFE_INTEGER,
      )
      return sendList(request, reply, InteractionSchema, pages)
    },
  )

  app.get(
    '/prospect/:prospectId/interaction/:interactionId',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: 'One interaction of a prospect',
        tags: ['Interactions'],
        params: Type.Object({ prospectId: ObjectIdSchema, interactionId: ObjectIdSchema }),
        response: { 200: InteractionSchema, ...errors },
      },
    },
    async (request) => {
      const integration = principal(request)
      const prospectId = await visibleProspectId(integration, request.params.prospectId)
      const interaction = await findInteraction(
        app.db,
        integration.accountId,
        prospectId,
        request.params.interactionId,
      )
      if (!interaction) throw notFound('Interaction')
      const [view] = await viewInteractions(app.db, [interaction])
      return view
    },
  )

  app.post(
    '/prospect/:prospectId/interactions',
    {
      config: { scope: 'prospects:write' },
      schema: {
        summary: 'Record an interaction (a note, call, message or question); answers with it in a list',
        description: 'A note answers as `output.comment`, as the original does.',
        tags: ['Interactions'],
        params: ProspectParams,
        body: NewEventSchema,
        response: { 200: Type.Array(InteractionSchema), ...errors },
      },
    },
    async (request) => {
      const integration = principal(request)
      const result = await addInteraction(
        app.db,
        integration,
        request.params.prospectId,
        request.body,
        app.now(),
      )
      if (!result.ok) throw notFound('Prospect')
      return viewInteractions(app.db, [result.value])
    },
  )
}

export default routes
