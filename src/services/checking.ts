import { createHash } from 'node:crypto'
import { newId } from '../domain/ids.js'
import type { Industry } from '../domain/industries.js'
import { assessContacts, foldLead } from '../domain/lead.js'
import { type ErrorDetail, validationDetails } from '../http/errors.js'
import { LEAD_SCHEMAS, type LeadInput } from '../http/schemas/lead.js'
import { validatorFor } from '../http/validation.js'
import type { Group } from '../store/groups.js'
import type { Integration } from '../store/integrations.js'
import type { Lead } from '../store/leads.js'
import type { Refusal } from './intake.js'

/**
 * Checking leads before anything is stored (api.md §2, identity.md §3): schema, aliases,
 * category, contacts. Pure work on plain data, so a batch's leads can be checked on a thread of
 * their own (checkers.ts).
 */
export type CheckContext = {
  integration: Pick<Integration, 'id' | 'accountId' | 'groupId'>
  group: Group
  industry: Industry
  blocked: ReadonlySet<string>
  at: number
}

type Checked = { ok: true; lead: Lead } | { ok: false; refusal: Refusal }

/** Checks one lead without storing it: the caller learns at once what is wrong and where. */
export function checkLead(input: LeadInput, ctx: CheckContext): Checked {
  const folded = foldLead(input, {
    currency: ctx.group.currency,
    distance: ctx.group.distance,
    categories: ctx.group.leadCategories.map((c) => c.key),
    defaultCategory: ctx.group.defaultCategory,
  })
  if ('problems' in folded) return { ok: false, refusal: { kind: 'invalid', details: folded.problems } }
  const contacts = assessContacts(folded.lead, ctx.group.countryCode, ctx.blocked)
  if (!contacts.usable) return { ok: false, refusal: { kind: 'unprocessable', details: contacts.problems } }
  const { provider, providerLeadId } = folded.lead
  return {
    ok: true,
    lead: {
      id: newId(ctx.at),
      accountId: ctx.integration.accountId,
      groupId: ctx.integration.groupId,
      integrationId: ctx.integration.id,
      industry: ctx.industry,
      receivedAt: ctx.at,
      status: 'queued',
      processedAt: null,
      prospectId: null,
      merged: false,
      error: null,
      body: folded.lead,
      providerRef: providerLeadId ? JSON.stringify([provider ?? '', providerLeadId]) : null,
      requestHash: createHash('sha256')
        .update(`${ctx.industry}\n${JSON.stringify(input)}`)
        .digest('hex'),
      matchKeys: [...contacts.phones, ...contacts.emails].flatMap((c) => (c.key ? [c.key] : [])),
    },
  }
}

/** One item of a batch: checked, or refused by its industry's schema (`schema`) or by checkLead. */
export type ItemCheck = Checked | { ok: false; schema: ErrorDetail[] }

/** Checks each item of a batch alone, against the schema of a single lead first. */
export function checkItems(items: unknown[], ctx: CheckContext): ItemCheck[] {
  const validate = validatorFor(LEAD_SCHEMAS[ctx.industry])
  return items.map((item) =>
    validate(item)
      ? checkLead(item as LeadInput, ctx)
      : { ok: false, schema: validationDetails(validate.errors ?? [], 'body') },
  )
}
