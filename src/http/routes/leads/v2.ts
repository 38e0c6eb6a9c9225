import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { type Static, Type } from 'typebox'
import { ALL_INDUSTRIES } from '../../../domain/industries.js'
import { checkLead, storeLeads } from '../../../services/intake.js'
import { viewLeadStatus } from '../../../services/prospect-views.js'
import { isInSubtree } from '../../../store/groups.js'
import type { Lead } from '../../../store/leads.js'
import { findLead } from '../../../store/leads.js'
import { notFound, validationDetails } from '../../errors.js'
import { principal } from '../../plugins/auth.js'
import { authErrors, ObjectIdSchema } from '../../schemas/common.js'
import { LEAD_SCHEMAS, type LeadInput, LeadReceiptSchema, LeadStatusSchema } from '../../schemas/lead.js'
import { validatorFor } from '../../validation.js'
import { acceptOne, intakeContext, leadsCommitted, receiptOf, refusalError } from './accept.js'
import { IdempotencyHeaders } from './v1.js'

const BATCH_BODY_LIMIT = 10 * 1024 * 1024

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
          summary: `Queue up to 1000 ${industry} leads, each validated alone (ext)`,
          description:
            'Valid leads commit together; each invalid one answers `{index, error}` in its place. Idempotency-Key is not used here: send `providerLeadId` to make retries safe.',
          tags: ['Leads'],
          body: Type.Object({ leads: Type.Array(Type.Unknown(), { minItems: 1, maxItems: 1000 }) }),
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
        const validate = validatorFor(LEAD_SCHEMAS[industry])
        const results: (ReturnType<typeof receiptOf> | Static<typeof ItemErrorSchema>)[] = new Array(
          request.body.leads.length,
        )
        const valid: { index: number; lead: Lead }[] = []
        request.body.leads.forEach((item, index) => {
          if (!validate(item)) {
            const details = validationDetails(validate.errors ?? [], 'body').map((d) => ({
              ...d,
              path: `/leads/${index}${d.path === '/' ? '' : d.path}`,
            }))
            results[index] = {
              index,
              error: {
                code: 'SCHEMA_VALIDATION_FAILED',
                message: details.map((d) => `${d.path} ${d.message}`).join('; '),
                details,
              },
            }
            return
          }
          const checked = checkLead(item as LeadInput, ctx)
          if (checked.ok) valid.push({ index, lead: checked.lead })
          else {
            const error = refusalError(checked.refusal)
            const details = (error.details ?? []).map((d) => ({ ...d, path: `/leads/${index}${d.path}` }))
            results[index] = {
              index,
              error: {
                code: error.code,
                message: error.message,
                details,
              },
            }
          }
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
