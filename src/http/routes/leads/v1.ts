import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ALL_INDUSTRIES } from '../../../domain/industries.js'
import { processLeadNow } from '../../../jobs/worker.js'
import { viewFromOutside, viewInteraction, viewProspect } from '../../../services/prospect-views.js'
import { findGroup, isInSubtree } from '../../../store/groups.js'
import { findInteractionsOfLead } from '../../../store/interactions.js'
import { findLeadsOfProspect } from '../../../store/leads.js'
import { resolveSurvivor } from '../../../store/prospects.js'
import { ApiError } from '../../errors.js'
import { principal } from '../../plugins/auth.js'
import { authErrors } from '../../schemas/common.js'
import { LEAD_SCHEMAS } from '../../schemas/lead.js'
import { ProspectCreatedSchema } from '../../schemas/prospect.js'
import { acceptOne } from './accept.js'

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ minLength: 1, maxLength: 255, description: 'ext: replays the original response for 24 h' }),
  ),
})

const leadErrors = {
  400: Type.Ref('Error'),
  409: Type.Ref('Error'),
  413: Type.Ref('Error'),
  422: Type.Ref('Error'),
  503: Type.Ref('Error'),
  ...authErrors,
}

/**
 * v1 lead routes: synchronous for compatibility. The lead takes the same durable path as v2
 * (committed with its job first), then this process applies it at once through the worker's own
 * code, or waits for the worker that holds it, and answers with the prospect.
 */
const routes: FastifyPluginAsyncTypebox = async (app) => {
  for (const industry of ALL_INDUSTRIES) {
    app.post(
      `/lead/${industry}`,
      {
        config: { scope: 'leads:write' },
        schema: {
          summary: `Create a ${industry} lead and answer with its prospect`,
          tags: ['Leads'],
          headers: IdempotencyHeaders,
          body: LEAD_SCHEMAS[industry],
          response: { 200: ProspectCreatedSchema, ...leadErrors },
        },
      },
      async (request) => {
        const { lead, applied } = await acceptOne(app, request, industry, request.body, true)
        if (applied && applied.status !== 'deferred') {
          app.leadMetrics.processed(applied)
          app.webhookWorker?.nudge()
        }
        const result =
          applied && applied.status !== 'deferred'
            ? applied
            : await processLeadNow(app.db, lead.id, app.now, app.leadMetrics.processed)
        if (result === null)
          throw new ApiError(
            'UNAVAILABLE',
            `Lead ${lead.id} is stored and still queued; poll GET /v2/leads/${lead.id}`,
          )
        if (result.status === 'rejected') throw new ApiError('UNPROCESSABLE_LEAD', result.error.message)
        if (result.status === 'missing') throw new Error(`lead ${lead.id} vanished after commit`)
        // The survivor, should a later lead have merged this prospect away in the meantime.
        const prospect = await resolveSurvivor(app.db, lead.accountId, result.prospectId)
        if (!prospect) throw new Error(`prospect ${result.prospectId} of lead ${lead.id} not found`)
        const leads = (await findLeadsOfProspect(app.db, prospect.id)).filter(
          (l) => !result.merged || l.id === lead.id,
        )
        const integration = principal(request)
        const additionalData = integration.scopes.includes('prospects:readAdditionalData')
        const full = await viewProspect(app.db, prospect, { additionalData, leads, merged: result.merged })
        const visible = await isInSubtree(app.db, integration.groupId, prospect.groupId)
        const view = visible ? full : viewFromOutside(full, lead)
        return { ...view, interactions: (await findInteractionsOfLead(app.db, lead.id)).map(viewInteraction) }
      },
    )
  }

  app.get(
    '/leads/categories',
    {
      config: { scope: 'leads:write' },
      schema: {
        summary: "Lead category keys of the key's group, the default first",
        tags: ['Leads'],
        response: { 200: Type.Array(Type.String()), ...authErrors },
      },
    },
    async (request) => {
      const integration = principal(request)
      const group = await findGroup(app.db, integration.accountId, integration.groupId)
      const keys = (group?.leadCategories ?? []).map((c) => c.key)
      return [group?.defaultCategory ?? '', ...keys.filter((k) => k !== group?.defaultCategory)].filter(
        Boolean,
      )
    },
  )

  app.get(
    '/leads/defaults',
    {
      config: { scope: 'leads:write' },
      schema: {
        summary: 'Currency and distance unit a lead takes when it does not say',
        tags: ['Leads'],
        response: {
          200: Type.Object({ currency: Type.String(), distance: Type.Enum(['km', 'mi']) }),
          ...authErrors,
        },
      },
    },
    async (request) => {
      const integration = principal(request)
      const group = await findGroup(app.db, integration.accountId, integration.groupId)
      return { currency: group?.currency ?? 'USD', distance: group?.distance ?? 'km' }
    },
  )
}

export default routes
