import type { ErrorDetail } from '../http/errors.js'
import { enqueueJobs } from '../jobs/queue.js'
import type { Db, Tx } from '../store/database.js'
import {
  findIdempotencyKey,
  findLead,
  findLeadsByProviderRef,
  insertLeads,
  type Lead,
  saveIdempotencyKey,
} from '../store/leads.js'
import { GroupCommit } from './group-commit.js'
import { applyStoredLeads, type ProcessResult } from './processing.js'

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

export type StoreRequest = {
  leads: Lead[]
  idempotencyKey?: string
  at: number
  /** Apply the new leads in the same transaction (v1), with this clock. */
  applyWith?: () => number
}
export type Stored =
  | { ok: true; accepted: Accepted[]; applied?: Map<string, ProcessResult> }
  | { ok: false; refusal: Refusal }

const committers = new WeakMap<Db, GroupCommit<StoreRequest, Stored>>()

/**
 * Stores checked leads and their jobs, in one transaction shared with the leads of concurrent
 * requests (group commit); resolves once that transaction has committed. A lead whose (provider,
 * providerLeadId) this integration already sent is not stored again: the original is returned.
 * An idempotency key replays its original lead, or refuses a different body with
 * IDEMPOTENCY_KEY_REUSED. A race between two identical requests on PostgreSQL ends at a unique
 * index and is retried, finding the winner (on SQLite transactions begin IMMEDIATE, so the second
 * simply sees the first).
 */
export function storeLeads(db: Db, leads: Lead[], options: Omit<StoreRequest, 'leads'>): Promise<Stored> {
  let committer = committers.get(db)
  if (!committer) {
    committer = new GroupCommit(db, storeRequests)
    committers.set(db, committer)
  }
  return committer.add({ leads, ...options })
}

/** What the requests of one transaction have stored or found so far, so a later one sees an earlier one. */
type Shared = {
  fresh: Lead[]
  /** The new leads' ids by the time their jobs run from (their request's time). */
  jobs: Map<number, string[]>
  idempotencyKeys: {
    integrationId: string
    key: string
    requestHash: string
    leadId: string
    createdAt: number
  }[]
  byRef: Map<string, Lead>
  byKey: Map<string, { requestHash: string; lead: Lead | undefined }>
}

/**
 * Stores the leads of several requests in one transaction (the work of a group commit): decides
 * each request in turn, reading only what it needs and seeing the requests before it, then writes
 * all their leads, jobs and idempotency keys at once.
 */
export async function storeRequests(tx: Tx, requests: StoreRequest[]): Promise<Stored[]> {
  const shared: Shared = {
    fresh: [],
    jobs: new Map(),
    idempotencyKeys: [],
    byRef: new Map(),
    byKey: new Map(),
  }
  const stored: Stored[] = []
  for (const request of requests) stored.push(await decide(tx, request, shared))
  await insertLeads(tx, shared.fresh)
  for (const [at, ids] of shared.jobs) await enqueueJobs(tx, 'lead', ids, at)
  for (const row of shared.idempotencyKeys) await saveIdempotencyKey(tx, row)
  await applyRequested(tx, requests, stored)
  return stored
}

/**
 * Applies the new leads of the requests that asked for it (v1) before the shared commit: storing
 * and applying then cost one transaction, not three (store, claim, apply). Whatever cannot be
 * applied here (an older lead of the person is queued, applying failed) stays queued with its job.
 */
async function applyRequested(tx: Tx, requests: StoreRequest[], stored: Stored[]): Promise<void> {
  const now = requests.find((r) => r.applyWith)?.applyWith
  if (!now) return
  const asking = stored.filter(
    (s, i): s is Extract<Stored, { ok: true }> => s.ok && requests[i]?.applyWith !== undefined,
  )
  const leadIds = asking.flatMap((s) => s.accepted.filter((a) => !a.duplicate).map((a) => a.lead.id))
  if (leadIds.length === 0) return
  const applied = await applyStoredLeads(tx, leadIds, now)
  for (const s of asking) {
    s.applied = new Map()
    for (const { lead } of s.accepted) {
      const result = applied.get(lead.id)
      if (result) s.applied.set(lead.id, result)
    }
  }
}

async function decide(tx: Tx, request: StoreRequest, shared: Shared): Promise<Stored> {
  const { leads, idempotencyKey, at } = request
  const first = leads[0]
  if (!first) return { ok: true, accepted: [] }
  const keyId = `${first.integrationId}\n${idempotencyKey}`
  if (idempotencyKey) {
    const seen = shared.byKey.get(keyId) ?? (await findKeyed(tx, first.integrationId, idempotencyKey, at))
    if (seen && seen.requestHash !== first.requestHash)
      return { ok: false, refusal: { kind: 'idempotency-reused' } }
    if (seen?.lead) return { ok: true, accepted: [{ lead: seen.lead, duplicate: true }] }
  }
  const refId = (lead: Lead) => `${lead.integrationId}\n${lead.providerRef}`
  const unknown = leads.flatMap((l) => (l.providerRef && !shared.byRef.has(refId(l)) ? [l.providerRef] : []))
  for (const original of await findLeadsByProviderRef(tx, first.integrationId, unknown))
    shared.byRef.set(refId(original), original)
  const accepted = leads.map((lead): Accepted => {
    const original = lead.providerRef ? shared.byRef.get(refId(lead)) : undefined
    if (original) return { lead: original, duplicate: true }
    if (lead.providerRef) shared.byRef.set(refId(lead), lead) // the same provider lead twice in one transaction
    shared.fresh.push(lead)
    const jobs = shared.jobs.get(at) ?? []
    jobs.push(lead.id)
    shared.jobs.set(at, jobs)
    return { lead, duplicate: false }
  })
  const replayed = accepted[0]?.lead
  if (idempotencyKey && replayed) {
    shared.byKey.set(keyId, { requestHash: first.requestHash, lead: replayed })
    shared.idempotencyKeys.push({
      integrationId: first.integrationId,
      key: idempotencyKey,
      requestHash: first.requestHash,
      leadId: replayed.id,
      createdAt: at,
    })
  }
  return { ok: true, accepted }
}

/** An idempotency key used in the last 24 hours, and its original lead if that still exists. */
async function findKeyed(tx: Tx, integrationId: string, key: string, at: number) {
  const seen = await findIdempotencyKey(tx, integrationId, key, at)
  return seen && { requestHash: seen.requestHash, lead: await findLead(tx, seen.leadId) }
}
