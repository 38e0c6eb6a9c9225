import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Industry } from '../../../domain/industries.js'
import { checkLead } from '../../../services/checking.js'
import { type Accepted, type Refusal, storeLeads } from '../../../services/intake.js'
import type { ProcessResult } from '../../../services/processing.js'
import { findBlockedValues } from '../../../store/accounts.js'
import { findGroup, type Group } from '../../../store/groups.js'
import { ApiError, type ErrorDetail } from '../../errors.js'
import { principal } from '../../plugins/auth.js'
import { iso } from '../../schemas/common.js'
import type { LeadInput } from '../../schemas/lead.js'

/** The shared steps of every lead route: the key's group, its industries, and the refusals as errors. */
export async function intakeContext(app: FastifyInstance, request: FastifyRequest, industry: Industry) {
  const integration = principal(request)
  const group = await findGroup(app.reader, integration.accountId, integration.groupId)
  if (!group?.industries.includes(industry))
    throw new ApiError('NOT_FOUND', `Industry ${industry} is not enabled for this group`)
  const blocked = await findBlockedValues(app.reader, integration.accountId)
  return { integration, group, industry, blocked, at: app.now() }
}

/**
 * After a commit: count the new leads and, unless the request applies them itself (v1), wake the
 * in-process worker and those of other processes. A worker woken for a v1 lead claims it first and
 * the request must wait for it.
 */
export function leadsCommitted(app: FastifyInstance, industry: Industry, count: number, wake = true): void {
  if (count === 0) return
  app.leadMetrics.accepted.inc({ industry }, count)
  if (!wake) return
  app.leadWorker?.nudge()
  app.announceJobs()
}

export function refusalError(refusal: Refusal): ApiError {
  switch (refusal.kind) {
    case 'invalid':
      return new ApiError(
        'SCHEMA_VALIDATION_FAILED',
        summarise('Invalid body', refusal.details),
        refusal.details,
      )
    case 'unprocessable':
      return new ApiError(
        'UNPROCESSABLE_LEAD',
        summarise('The lead has no usable contact', refusal.details),
        refusal.details,
      )
    case 'idempotency-reused':
      return new ApiError(
        'IDEMPOTENCY_KEY_REUSED',
        'This Idempotency-Key was used with a different body in the last 24 hours',
      )
  }
}

function summarise(head: string, details: ErrorDetail[]): string {
  return `${head}: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`
}

/**
 * Checks and stores one lead; throws the refusal. Resolves once the lead and its job are
 * committed. With `apply` (v1) the lead is applied in the same transaction when it can be, and
 * `applied` is its outcome; otherwise the caller applies it.
 */
export async function acceptOne(
  app: FastifyInstance,
  request: FastifyRequest,
  industry: Industry,
  input: LeadInput,
  apply = false,
): Promise<Accepted & { group: Group; applied?: ProcessResult }> {
  const ctx = await intakeContext(app, request, industry)
  const checked = checkLead(input, ctx)
  if (!checked.ok) throw refusalError(checked.refusal)
  const idempotencyKey = request.headers['idempotency-key'] as string | undefined
  const stored = await storeLeads(app.db, [checked.lead], {
    idempotencyKey,
    at: ctx.at,
    ...(apply ? { applyWith: app.now } : {}),
  })
  if (!stored.ok) throw refusalError(stored.refusal)
  const accepted = stored.accepted[0] as Accepted
  if (!accepted.duplicate) leadsCommitted(app, industry, 1, !apply)
  return { ...accepted, group: ctx.group, applied: stored.applied?.get(accepted.lead.id) }
}

/** LeadReceipt (ext): where the caller can poll for the result; a duplicate says so and names its original. */
export function receiptOf({ lead, duplicate }: Accepted, request: FastifyRequest) {
  const prefix = request.url.startsWith('/api/') ? '/api/v2' : '/v2'
  const receipt = {
    id: lead.id,
    status: lead.status,
    receivedAt: iso(lead.receivedAt),
    statusUrl: `${prefix}/leads/${lead.id}`,
  }
  return duplicate ? { ...receipt, duplicate: true } : receipt
}
