import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { type Static, Type } from 'typebox'
import { ALL_INDUSTRIES } from '../../../domain/industries.js'
import type { ItemCheck } from '../../../services/checking.js'
import { storeLeads } from '../../../services/intake.js'
import { viewLeadStatus } from '../../../services/prospect-views.js'
import { isInSubtree } from '../../../store/groups.js'
import type { Lead } from '../../../store/leads.js'
import { findLead } from '../../../store/leads.js'
import { notFound } from '../../errors.js'
import { principal } from '../../plugins/auth.js'
import { authErrors, ObjectIdSchema } from '../../schemas/common.js'
import { LEAD_SCHEMAS, LeadReceiptSchema, LeadStatusSchema } from '../../schemas/lead.js'
import { acceptOne, intakeContext, leadsCommitted, receiptOf, refusalError } from './accept.js'
import { IdempotencyHeaders } from './v1.js'

/** The largest batch the route takes: its body, and its leads. */
export const BATCH_BODY_LIMIT = 10 * 1024 * 1024
export const BATCH_MAX_LEADS = 1000

const ItemErrorSchema = Type.Object({
  index: Type.Integer(),
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Type.Optional(Type.Array(Type.Any())),
  }),
})

/**
 * v2 lead routes (asynchronous): 202 as soon as the lead and its job are committed; the result
 * arrives by the `leads` webhook and by polling GET /v2/leads/{id}.
 */
const routes: FastifyPluginAsyncTypebox = async (app) => {
  for (const industry of ALL_INDUSTRIES) {
    app.post(
      `/leads/${industry}`,
      {
        config: { scope: 'leads:write' },
        schema: {
          summary: `Queue a ${industry} lead`,
          tags: ['Leads'],
          headers: IdempotencyHeaders,
          body: LEAD_SCHEMAS[industry],
          response: {
            202: LeadReceiptSchema,
            400: Type.Ref('Error'),
            409: Type.Ref('Error'),
            422: Type.Ref('Error'),
            ...authErrors,
          },
        },
      },
      async (request, reply) => {
        const accepted = await acceptOne(app, request, industry, request.body)
        return reply.status(202).send(receiptOf(accepted, request))
      },
    )

    app.post(
      `/leads/${industry}/batch`,
      {
        bodyLimit: BATCH_BODY_LIMIT,
        config: { scope: 'leads:write' },
        schema: {
          summary: `Queue up to ${BATCH_MAX_LEADS} ${industry} leads, each validated alone (ext)`,
          description:
            'Valid leads commit together; each invalid one answers `{index, error}` in its place. Idempotency-Key is not used here: send `providerLeadId` to make retries safe.',
          tags: ['Leads'],
          body: Type.Object({
            leads: Type.Array(Type.Unknown(), { minItems: 1, maxItems: BATCH_MAX_LEADS }),
          }),
          response: {
            202: Type.Object({ results: Type.Array(Type.Union([LeadReceiptSchema, ItemErrorSchema])) }),
            400: Type.Ref('Error'),
            413: Type.Ref('Error'),
            ...authErrors,
          },
        },
      },
      async (request, reply) => {
        const ctx = await intakeContext(app, request, industry)
        const checks = await app.checkers.check(request.body.leads, ctx)
        const results: (ReturnType<typeof receiptOf> | Static<typeof ItemErrorSchema>)[] = new Array(
          checks.length,
        )
        const valid: { index: number; lead: Lead }[] = []
        checks.forEach((check, index) => {
          if (check.ok) valid.push({ index, lead: check.lead })
          else results[index] = { index, error: itemError(index, check) }
        })
        const stored = await storeLeads(
          app.db,
          valid.map((v) => v.lead),
          { at: ctx.at },
        )
        if (!stored.ok) throw refusalError(stored.refusal)
        stored.accepted.forEach((accepted, i) => {
          results[valid[i]?.index as number] = receiptOf(accepted, request)
        })
        leadsCommitted(app, industry, stored.accepted.filter((a) => !a.duplicate).length)
        return reply.status(202).send({ results })
      },
    )
  }

  app.get(
    '/leads/:leadId',
    {
      config: { scope: 'leads:write' },
      schema: {
        summary: 'The status of a lead (ext)',
        tags: ['Leads'],
        params: Type.Object({ leadId: ObjectIdSchema }),
        response: { 200: LeadStatusSchema, 400: Type.Ref('Error'), 404: Type.Ref('Error'), ...authErrors },
      },
    },
    async (request) => {
      const integration = principal(request)
      const lead = await findLead(app.db, request.params.leadId, integration.accountId)
      if (!lead || !(await isInSubtree(app.db, integration.groupId, lead.groupId))) throw notFound('Lead')
      return viewLeadStatus(lead)
    },
  )
}

export default routes

/** A refused item of a batch, its paths inside the batch's body. */
function itemError(index: number, check: Exclude<ItemCheck, { ok: true }>) {
  const at = (path: string) => `/leads/${index}${path === '/' ? '' : path}`
  if ('schema' in check) {
    const details = check.schema.map((d) => ({ ...d, path: at(d.path) }))
    return {
      code: 'SCHEMA_VALIDATION_FAILED' as const,
      message: details.map((d) => `${d.path} ${d.message}`).join('; '),
      details,
    }
  }
  const error = refusalError(check.refusal)
  return {
    code: error.code,
    message: error.message,
    details: (error.details ?? []).map((d) => ({ ...d, path: at(d.path) })),
  }
}
