import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { classifySearch, parseDataFilter } from '../../../domain/listing.js'
import { parsePhone } from '../../../domain/phone.js'
import { viewProspect, viewProspects } from '../../../services/prospect-views.js'
import { deleteProspect, transferProspect, updateProspect } from '../../../services/prospects.js'
import { findVisibleProspect } from '../../../services/visibility.js'
import { findGroup } from '../../../store/groups.js'
import type { Integration } from '../../../store/integrations.js'
import { findMerges } from '../../../store/merges.js'
import { listProspects } from '../../../store/prospect-search.js'
import type { Prospect } from '../../../store/prospects.js'
import { ApiError, notFound, orThrow } from '../../errors.js'
import { dateQuery, dateRanges, PageQuery, paginate, sendPages } from '../../listing.js'
import { principal } from '../../plugins/auth.js'
import { authErrors, BooleanQuerySchema, iso, ObjectIdSchema } from '../../schemas/common.js'
import { MergeRecordSchema, ProspectSchema, UpdateProspectSchema } from '../../schemas/prospect.js'

const ProspectParams = Type.Object({ prospectId: ObjectIdSchema })
const oneErrors = { 400: Type.Ref('Error'), 404: Type.Ref('Error'), ...authErrors }
const PROSPECT_STATUSES = ['unclaimed', 'new', 'followUp', 'processing', 'archived'] as const

const ListQuery = Type.Object({
  search: Type.Optional(
    Type.String({
      maxLength: 200,
      description: 'phone or email (normalised match) or name (case- and accent-insensitive substring)',
    }),
  ),
  phoneNumber: Type.Optional(Type.String({ maxLength: 100 })),
  category: Type.Optional(Type.String({ maxLength: 200 })),
  status: Type.Optional(Type.Enum(PROSPECT_STATUSES)),
  agent: Type.Optional(ObjectIdSchema),
  group: Type.Optional(ObjectIdSchema),
  withAgent: Type.Optional(BooleanQuerySchema),
  ...dateQuery(['created', 'claimed', 'transferred']),
  additionalData: Type.Optional(
    Type.Array(Type.String({ maxLength: 500 }), {
      description: 'FIELD OP VALUE, OP one of = >= > <= < ~ (also sent as additionalData[])',
    }),
  ),
  'additionalData[]': Type.Optional(Type.Array(Type.String({ maxLength: 500 }))),
  ...PageQuery,
})

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const additionalData = (integration: Integration) =>
    integration.scopes.includes('prospects:readAdditionalData')
  const view = (integration: Integration, prospect: Prospect) =>
    viewProspect(app.db, prospect, { additionalData: additionalData(integration) })

  async function visible(integration: Integration, id: string): Promise<Prospect> {
    const prospect = await findVisibleProspect(app.db, integration, id)
    if (!prospect) throw notFound('Prospect')
    return prospect
  }

  async function countryOf(integration: Integration) {
    return (
      (await findGroup(app.db, integration.accountId, integration.groupId))?.countryCode ??
      app.config.defaultCountry
    )
  }

  app.get(
    '/prospects',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: 'Prospects of the key’s group subtree, newest first, filtered',
        description:
          'Without `limit` and without dates only the last 31 days are listed; a range over 31 days, a start after its end, or a single date older than 31 days is `400 INVALID_DATE_RANGE`. With `limit`, cursors page through everything. A full page carries `Link: <…>; rel="next"`.',
        tags: ['Prospects'],
        querystring: ListQuery,
        response: { 200: Type.Array(ProspectSchema), ...oneErrors },
      },
    },
    async (request, reply) => {
      const q = request.query
      const integration = principal(request)
      const ranges = dateRanges(q, ['created', 'claimed', 'transferred'], 'created', app.now())
      const data = [...(q.additionalData ?? []), ...(q['additionalData[]'] ?? [])].map((text, i) => {
        const parsed = parseDataFilter(text)
        if (!parsed) {
          throw new ApiError(
            'SCHEMA_VALIDATION_FAILED',
            `Invalid querystring: additionalData[${i}] must be FIELD OP VALUE`,
            [
              {
                path: `/additionalData/${i}`,
                message: 'must be FIELD OP VALUE with OP one of = >= > <= < ~',
                in: 'querystring',
              },
            ],
          )
        }
        return parsed
      })
      const country = q.search || q.phoneNumber ? await countryOf(integration) : app.config.defaultCountry
      // An unusable phoneNumber matches nothing (it has no key), rather than everything.
      const phoneKey =
        q.phoneNumber === undefined ? undefined : (parsePhone(q.phoneNumber, country).key ?? 'none')
      const filter = {
        accountId: integration.accountId,
        rootGroupId: integration.groupId,
        ...(q.search ? { search: classifySearch(q.search, country) } : {}),
        ...(phoneKey ? { phoneKey } : {}),
        category: q.category,
        status: q.status,
        agentId: q.agent,
        groupId: q.group,
        withAgent: q.withAgent === undefined ? undefined : q.withAgent === 'true',
        ...ranges,
        data,
        after: q.after,
      }
      const limit = q.limit ?? 100
      const pages = paginate(
        (before, size) => listProspects(app.db, { ...filter, before, limit: size }),
        (page) => viewProspects(app.db, page, { additionalData: additionalData(integration) }),
        limit,
        q.before,
      )
      return sendPages(request, reply, ProspectSchema, pages, limit)
    },
  )

  app.get(
    '/prospect/:prospectId',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: 'One prospect; an id merged away answers with its survivor',
        tags: ['Prospects'],
        params: ProspectParams,
        response: { 200: ProspectSchema, ...oneErrors },
      },
    },
    async (request) => {
      const integration = principal(request)
      return view(integration, await visible(integration, request.params.prospectId))
    },
  )

  app.get(
    '/prospect-by',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: 'Prospects whose phones match a number after normalisation',
        tags: ['Prospects'],
        querystring: Type.Object({ phoneNumber: Type.String({ minLength: 1, maxLength: 100 }) }),
        response: { 200: Type.Array(ProspectSchema), ...oneErrors },
      },
    },
    async (request) => {
      const integration = principal(request)
      const phoneKey = parsePhone(request.query.phoneNumber, await countryOf(integration)).key
      if (!phoneKey) return []
      const found = await listProspects(app.db, {
        accountId: integration.accountId,
        rootGroupId: integration.groupId,
        phoneKey,
        limit: 100,
      })
      return viewProspects(app.db, found, { additionalData: additionalData(integration) })
    },
  )

  app.patch(
    '/prospect/:prospectId',
    {
      config: { scope: 'prospects:write' },
      schema: {
        summary: 'Update a prospect; an added phone or email runs the merge rules',
        description:
          'When the added contact belongs to another prospect the two merge; the answer is the survivor (the older).',
        tags: ['Prospects'],
        params: ProspectParams,
        body: UpdateProspectSchema,
        response: { 200: ProspectSchema, 409: Type.Ref('Error'), ...oneErrors },
      },
    },
    async (request) => {
      const integration = principal(request)
      const updated = orThrow(
        await updateProspect(app.db, integration, request.params.prospectId, request.body, app.now()),
      )
      return view(integration, updated)
    },
  )

  app.delete(
    '/prospect/:prospectId',
    {
      config: { scope: 'prospects:write' },
      schema: {
        summary: 'Delete a prospect; answers with it as it was',
        tags: ['Prospects'],
        params: ProspectParams,
        response: { 200: ProspectSchema, ...oneErrors },
      },
    },
    async (request) => {
      const integration = principal(request)
      return view(
        integration,
        orThrow(await deleteProspect(app.db, integration, request.params.prospectId, app.now())),
      )
    },
  )

  app.post(
    '/prospect/:prospectId/transfer',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: 'Transfer a prospect to a group; its distribution decides agent and status',
        description: 'The original API requires only prospects:read for this.',
        tags: ['Prospects'],
        params: ProspectParams,
        body: Type.Object({ group: ObjectIdSchema }),
        response: { 200: ProspectSchema, ...oneErrors },
      },
    },
    async (request) => {
      const integration = principal(request)
      return view(
        integration,
        orThrow(
          await transferProspect(
            app.db,
            integration,
            request.params.prospectId,
            request.body.group,
            app.now(),
          ),
        ),
      )
    },
  )

  app.get(
    '/prospect/:prospectId/merges',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: 'Why a prospect holds what it holds: each merge, its lead, and the keys that matched (ext)',
        tags: ['Prospects'],
        params: ProspectParams,
        response: { 200: Type.Array(MergeRecordSchema), ...oneErrors },
      },
    },
    async (request) => {
      const prospect = await visible(principal(request), request.params.prospectId)
      return (await findMerges(app.db, prospect.id)).map((m) => ({
        id: m.id,
        survivorId: m.survivorId,
        mergedProspectIds: m.mergedProspectIds,
        ...(m.leadId ? { leadId: m.leadId } : {}),
        keys: m.keys,
        skippedKeys: m.skippedKeys.map(({ type, value }) => ({ type, value })),
        at: iso(m.at),
      }))
    },
  )
}

export default routes
