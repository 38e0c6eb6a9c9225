import { createHash } from 'node:crypto'
import { newId } from '../domain/ids.js'
import type { Industry } from '../domain/industries.js'
import { assessContacts, foldLead } from '../domain/lead.js'
import type { ErrorDetail } from '../http/errors.js'
import type { LeadInput } from '../http/schemas/lead.js'
import { enqueueJobs } from '../jobs/queue.js'
import type { Db, Tx } from '../store/database.js'
import type { Group } from '../store/groups.js'
import type { Integration } from '../store/integrations.js'
import {
  findIdempotencyKey,
  findLead,
  findLeadsByProviderRef,
  insertLeads,
  type Lead,
  saveIdempotencyKey,
} from '../store/leads.js'
import { withRaceRetry } from './merging.js'

/**
 * Accepting leads (api.md §2, identity.md §3): everything that can refuse a lead runs before
 * anything is stored (schema, aliases, category, contacts), then the lead and its job commit in
 * one transaction. Only after that commit may the caller answer 2xx.
 */
export type Refusal =
  | { kind: 'invalid'; details: ErrorDetail[] }
  | { kind: 'unprocessable'; details: ErrorDetail[] }
  | { kind: 'idempotency-reused' }

/** One lead as accepted: new, or the original of a duplicate (same provider lead, same idempotency key). */
export type Accepted = { lead: Lead; duplicate: boolean }

type Checked = { ok: true; lead: Lead } | { ok: false; refusal: Refusal }

/** Checks one lead without storing it: the caller learns at once what is wrong and where. */
export function checkLead(
  input: LeadInput,
  ctx: {
    integration: Integration
    group: Group
    industry: Industry
    blocked: ReadonlySet<string>
    at: number
  },
): Checked {
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

/**
 * Stores checked leads and their jobs in one transaction. A lead whose (provider, providerLeadId)
 * this integration already sent is not stored again: the original is returned. An idempotency key
 * replays its original lead, or refuses a different body with IDEMPOTENCY_KEY_REUSED. A race
 * between two identical requests on PostgreSQL ends at a unique index and is retried, finding the
 * winner (on SQLite transactions begin IMMEDIATE, so the second simply sees the first).
 */
export async function storeLeads(
  db: Db,
  leads: Lead[],
  options: { idempotencyKey?: string; at: number },
): Promise<{ ok: true; accepted: Accepted[] } | { ok: false; refusal: Refusal }> {
  return withRaceRetry(db, (tx) => storeIn(tx, leads, options))
}

async function storeIn(tx: Tx, leads: Lead[], options: { idempotencyKey?: string; at: number }) {
  const first = leads[0]
  if (options.idempotencyKey && first) {
    const seen = await findIdempotencyKey(tx, first.integrationId, options.idempotencyKey, options.at)
    if (seen && seen.requestHash !== first.requestHash)
      return { ok: false as const, refusal: { kind: 'idempotency-reused' as const } }
    const original = seen && (await findLead(tx, seen.leadId))
    if (original) return { ok: true as const, accepted: [{ lead: original, duplicate: true }] }
  }
  const refs = leads.flatMap((l) => (l.providerRef ? [l.providerRef] : []))
  const existing = new Map(
    (await findLeadsByProviderRef(tx, first?.integrationId ?? '', refs)).map((l) => [l.providerRef, l]),
  )
  const accepted: Accepted[] = []
  const fresh: Lead[] = []
  for (const lead of leads) {
    const original = lead.providerRef ? existing.get(lead.providerRef) : undefined
    if (original) {
      accepted.push({ lead: original, duplicate: true })
      continue
    }
    if (lead.providerRef) existing.set(lead.providerRef, lead) // the same provider lead twice in one batch
    fresh.push(lead)
    accepted.push({ lead, duplicate: false })
  }
  await insertLeads(tx, fresh)
  await enqueueJobs(
    tx,
    'lead',
    fresh.map((l) => l.id),
    options.at,
  )
  if (options.idempotencyKey && first && accepted[0]) {
    await saveIdempotencyKey(tx, {
      integrationId: first.integrationId,
      key: options.idempotencyKey,
      requestHash: first.requestHash,
      leadId: accepted[0].lead.id,
      createdAt: options.at,
    })
  }
  return { ok: true as const, accepted }
}
