import { sql } from 'kysely'
import { newId } from '../domain/ids.js'
import { interactionOf } from '../domain/interactions.js'
import { assessContacts, type Contacts } from '../domain/lead.js'
import {
  type Contact,
  chooseSurvivor,
  fieldsFromLead,
  MAX_EMAILS,
  MAX_PHONES,
  type MatchKey,
  matchable,
  type ProspectFields,
  unionContacts,
} from '../domain/merge.js'
import { completeJobsOf } from '../jobs/queue.js'
import { findBlockedValues } from '../store/accounts.js'
import { engineOf } from '../store/connect.js'
import { chunks, type Db, type Tx as Transaction } from '../store/database.js'
import { findGroup, type Group, lockGroup } from '../store/groups.js'
import {
  findQueuedKeys,
  forgetLeadKeys,
  type Lead,
  leadFromRow,
  lockLeads,
  markLeads,
  type QueuedKey,
} from '../store/leads.js'
import { findPreviousHolders, type Prospect } from '../store/prospects.js'
import type { User } from '../store/users.js'
import { isRace, newInteraction, ProspectChanges, prospectEvent, withRaceRetry } from './merging.js'
import { findActiveAgents, GroupRouter } from './routing.js'

export type ProcessResult =
  | { status: 'processed'; leadId: string; prospectId: string; merged: boolean }
  | { status: 'rejected'; leadId: string; error: { code: string; message: string } }
  | { status: 'missing'; leadId: string }
  /** An older lead of the same person is not applied yet; nothing changed, try again shortly. */
  | { status: 'deferred'; leadId: string; waitingFor: string; until: number }

/** The outcome of a lead that was applied (or found already applied), as callers report it. */
export type AppliedResult = Exclude<ProcessResult, { status: 'deferred' }>

/** One lead could not be applied (its stored body does not parse, its group is gone). */
class LeadFailed extends Error {
  constructor(
    readonly leadId: string,
    readonly reason: unknown,
  ) {
    super(`lead ${leadId} could not be applied`)
  }
}

/**
 * Applies one lead (identity.md §4–§6) in one transaction: match, merge, route, record
 * interactions and events, mark the lead and remove its job. Idempotent on the lead id: a lead
 * already applied is left alone, so at-least-once delivery has an exactly-once effect. When a
 * concurrent worker wins a race for the same keys (the active-key unique index refuses the second
 * prospect, or a locked prospect was merged away), the whole transaction is retried and then sees
 * the winner's prospect. A lead that cannot be applied throws its reason.
 */
export async function processLead(db: Db, leadId: string, now: () => number): Promise<ProcessResult> {
  try {
    const results = await withRaceRetry(db, (tx) => applyLeads(tx, [leadId], now))
    return results.get(leadId) as ProcessResult
  } catch (error) {
    throw error instanceof LeadFailed ? error.reason : error
  }
}

/**
 * Applies leads in the transaction that has just stored them (v1), under a savepoint: when that
 * fails, nothing of it is kept, the leads stay stored and queued with their jobs, and the caller
 * applies them as a worker would. Leads that must wait for an older lead are deferred as usual.
 */
export async function applyStoredLeads(
  tx: Transaction,
  leadIds: string[],
  now: () => number,
): Promise<Map<string, ProcessResult>> {
  await sql`savepoint apply`.execute(tx)
  try {
    const results = await applyLeads(tx, leadIds, now)
    await sql`release savepoint apply`.execute(tx)
    return results
  } catch {
    await sql`rollback to savepoint apply`.execute(tx)
    await sql`release savepoint apply`.execute(tx)
    return new Map()
  }
}

/**
 * Applies a claimed batch of leads in transactions of up to LEADS_PER_TRANSACTION, each a few
 * statements for all its leads (read, decide in memory, write). A lead that cannot be applied is
 * left out of its transaction, which runs again without it; its caller runs it again alone,
 * where failures are retried and recorded. If a transaction itself fails, none of its leads are
 * in the result. Deferred leads are in the result as such (their older lead may be later in the
 * batch). `onCommitted` hears each transaction's results as soon as it commits.
 */
export async function processLeads(
  db: Db,
  leadIds: string[],
  now: () => number,
  onCommitted?: (results: ProcessResult[]) => void,
): Promise<Map<string, ProcessResult>> {
  const results = new Map<string, ProcessResult>()
  for (const chunk of chunks(leadIds, LEADS_PER_TRANSACTION)) {
    const applied = await applyTogether(db, chunk, now)
    if (!applied) continue
    for (const [leadId, result] of applied) results.set(leadId, result)
    try {
      onCommitted?.([...applied.values()])
    } catch {
      // A listener's trouble (metrics, a wake-up) must not cost the rest of the batch its turn.
    }
  }
  return results
}

/**
 * Enough leads that a transaction's statements and its commit (one fsync on SQLite) are shared by
 * many, few enough that it holds SQLite's write lock (and the API requests of the same process
 * waiting behind it) for tens of milliseconds, not seconds. A worker that keeps up claims fewer
 * than this, so the bound matters when there is a queue to drain: against 100, draining 20,000
 * leads went 4,367–4,724 → 4,975–5,894 leads/s (SQLite) and 1,628–1,645 → 2,022–2,104 (PostgreSQL,
 * two workers), with accept → webhook at 1,000 leads/s unchanged (BENCHMARKS.md §3).
 */
export const LEADS_PER_TRANSACTION = 200

/** One transaction of leads, run again without a lead that fails and again after a lost race. */
async function applyTogether(
  db: Db,
  leadIds: string[],
  now: () => number,
): Promise<Map<string, ProcessResult> | undefined> {
  let ids = leadIds
  for (let races = 0; ids.length > 0; ) {
    try {
      return await db.transaction().execute((tx) => applyLeads(tx, ids, now))
    } catch (error) {
      if (error instanceof LeadFailed) ids = ids.filter((id) => id !== error.leadId)
      else if (!isRace(error) || ++races >= 10) return undefined
    }
  }
  return new Map()
}

/** What applying a transaction's leads reads once and shares. */
type Batch = {
  tx: Transaction
  at: number
  changes: ProspectChanges
  /** Each queued lead's group and parsed contacts, or why they could not be had. */
  prepared: Map<string, { group: Group; contacts: Contacts } | { failure: unknown }>
  /** Queued leads' match keys, by account and key. */
  queued: Map<string, QueuedKey[]>
  /** The most recent archived holder of each key, by account and key. */
  previous: Map<string, string>
  routers: Map<string, Promise<GroupRouter>>
  agents: Map<string, Promise<User[]>>
  /** Leads applied here, with their outcome, written at the end. */
  marks: Lead[]
}

const accountKey = (accountId: string, value: string) => `${accountId}\n${value}`

/**
 * Applies leads in order in the caller's transaction: reads what they need in a few statements
 * (the leads, queued leads of the same people, the prospects holding their keys, routing), decides
 * each lead in memory seeing the ones before it, then writes everything (ProspectChanges.flush).
 * The reads the leads share may change meanwhile (blocked values, who is working); a batch applies
 * as of its start.
 */
async function applyLeads(
  tx: Transaction,
  leadIds: string[],
  now: () => number,
): Promise<Map<string, ProcessResult>> {
  const postgres = engineOf(tx) === 'postgres'
  const leads = new Map<string, Lead>()
  for (const row of await lockLeads(tx, leadIds, postgres)) {
    try {
      leads.set(row.id, leadFromRow(row))
    } catch (error) {
      throw new LeadFailed(row.id, error)
    }
  }
  const groups = new Map<string, Promise<Group | undefined>>()
  const groupOf = (lead: Lead) =>
    memo(groups, `${lead.accountId}/${lead.groupId}`, () => findGroup(tx, lead.accountId, lead.groupId))
  if (postgres) await lockTurns(tx, [...leads.values()], groupOf)
  const read = await prepare(
    tx,
    [...leads.values()].filter((l) => l.status === 'queued'),
    groupOf,
  )
  // The batch's time is taken after it read which older leads are still queued: a lead whose older
  // one another worker applied before that read is then always applied at a later time.
  const at = now()
  const batch: Batch = { ...read, at }

  const results = new Map<string, ProcessResult>()
  const done = new Set<string>()
  for (const leadId of leadIds) {
    const lead = leads.get(leadId)
    if (lead?.status === 'queued') {
      const older = findOlder(batch, lead, done)
      if (older) {
        results.set(leadId, { status: 'deferred', leadId, waitingFor: older.leadId, until: older.runAt })
        continue
      }
    }
    // From here the lead is applied (or was already): its job and its queued keys are done with.
    done.add(leadId)
    if (!lead) results.set(leadId, { status: 'missing', leadId })
    else if (lead.status === 'processed')
      results.set(leadId, {
        status: 'processed',
        leadId,
        prospectId: lead.prospectId as string,
        merged: lead.merged,
      })
    else if (lead.status === 'rejected')
      results.set(leadId, {
        status: 'rejected',
        leadId,
        error: lead.error ?? { code: 'UNPROCESSABLE_LEAD', message: '' },
      })
    else {
      try {
        results.set(leadId, await applyLead(batch, lead))
      } catch (error) {
        throw isRace(error) ? error : new LeadFailed(leadId, error)
      }
    }
  }

  await completeJobsOf(tx, [...done])
  await forgetLeadKeys(tx, [...done])
  await batch.changes.flush(at)
  // A lead's prospect may have been merged later in the batch: it then belongs to the survivor.
  await markLeads(
    tx,
    batch.marks.map((l) => ({ ...l, prospectId: l.prospectId && batch.changes.survivorOf(l.prospectId) })),
  )
  for (const router of batch.routers.values()) await (await router).save(tx)
  return results
}

/**
 * A round-robin turn is a row lock on its group (GroupRouter), held until the transaction
 * commits. On PostgreSQL a transaction takes the locks of all its leads' round-robin groups
 * first, in id order, so two workers' batches queue for a group instead of deadlocking over two.
 */
async function lockTurns(
  tx: Transaction,
  leads: Lead[],
  groupOf: (lead: Lead) => Promise<Group | undefined>,
): Promise<void> {
  const turns = new Set<string>()
  for (const lead of leads) {
    const group = await groupOf(lead)
    if (group?.distribution === 'roundRobin') turns.add(group.id)
  }
  for (const id of [...turns].sort()) await lockGroup(tx, id)
}

/** Reads what the queued leads need, a few statements per account. */
async function prepare(
  tx: Transaction,
  leads: Lead[],
  groupOf: (lead: Lead) => Promise<Group | undefined>,
): Promise<Omit<Batch, 'at'>> {
  const batch: Omit<Batch, 'at'> = {
    tx,
    changes: new ProspectChanges(tx),
    prepared: new Map(),
    queued: new Map(),
    previous: new Map(),
    routers: new Map(),
    agents: new Map(),
    marks: [],
  }
  const blocked = new Map<string, Promise<ReadonlySet<string>>>()
  const byAccount = new Map<string, { keys: MatchKey[]; values: string[]; until: number }>()
  for (const lead of leads) {
    const account = byAccount.get(lead.accountId) ?? { keys: [], values: [], until: 0 }
    byAccount.set(lead.accountId, account)
    account.values.push(...lead.matchKeys)
    account.until = Math.max(account.until, lead.receivedAt)
    try {
      const group = await groupOf(lead)
      if (!group) throw new Error(`lead ${lead.id}: group ${lead.groupId} is gone`)
      const refused = await memo(blocked, lead.accountId, () => findBlockedValues(tx, lead.accountId))
      const contacts = assessContacts(lead.body, group.countryCode, refused)
      batch.prepared.set(lead.id, { group, contacts })
      account.keys.push(...matchable(contacts).keys)
    } catch (failure) {
      batch.prepared.set(lead.id, { failure })
    }
  }
  for (const [accountId, { keys, values, until }] of byAccount) {
    for (const queued of await findQueuedKeys(tx, accountId, values, until)) {
      const key = accountKey(accountId, queued.keyValue)
      batch.queued.set(key, [...(batch.queued.get(key) ?? []), queued])
    }
    await batch.changes.load(accountId, keys)
    for (const { type, value, prospectId } of await findPreviousHolders(tx, accountId, keys)) {
      const key = accountKey(accountId, `${type}:${value}`)
      if (prospectId > (batch.previous.get(key) ?? '')) batch.previous.set(key, prospectId)
    }
  }
  return batch
}

/**
 * An older lead of the same person (sharing a match key) still waiting to be applied: `lead` must
 * wait for it, so one person's leads apply in the order received (receipt time, then id). Leads
 * applied earlier in this transaction no longer count.
 */
function findOlder(batch: Batch, lead: Lead, done: ReadonlySet<string>): QueuedKey | undefined {
  let older: QueuedKey | undefined
  for (const value of lead.matchKeys) {
    for (const queued of batch.queued.get(accountKey(lead.accountId, value)) ?? []) {
      if (queued.leadId === lead.id || done.has(queued.leadId)) continue
      const before =
        queued.receivedAt < lead.receivedAt ||
        (queued.receivedAt === lead.receivedAt && queued.leadId < lead.id)
      if (before && (!older || queued.runAt > older.runAt)) older = queued
    }
  }
  return older
}

function memo<T>(cache: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
  let value = cache.get(key)
  if (!value) {
    value = load()
    cache.set(key, value)
  }
  return value
}

/** Decides one lead in memory: match, merge or create, route, interactions and events. */
async function applyLead(batch: Batch, lead: Lead): Promise<ProcessResult> {
  const { changes, at } = batch
  const prepared = batch.prepared.get(lead.id)
  if (!prepared || 'failure' in prepared)
    throw prepared?.failure ?? new Error(`lead ${lead.id} was not prepared`)
  const { group, contacts } = prepared
  if (!contacts.usable)
    return reject(batch, lead, contacts.problems.map((p) => `${p.path} ${p.message}`).join('; '))

  const { phones, emails, keys } = matchable(contacts)
  const { holders, candidates } = changes.holdersOf(lead.accountId, keys)
  const fromLead = fieldsFromLead(lead.body)
  let prospect: Prospect
  if (candidates.length === 0) {
    prospect = await createProspect(batch, lead, group, fromLead, { phones, emails }, keys)
  } else {
    prospect = chooseSurvivor(candidates)
    const losers = candidates.filter((c) => c.id !== prospect.id)
    const skipped: (Contact & { type: string })[] = []
    for (const loser of losers) skipped.push(...changes.absorb(prospect, loser, at))
    skipped.push(...changes.attach(prospect, fromLead, { phones, emails }))
    prospect.updatedAt = at
    const type = losers.length > 0 ? 'merged' : 'updated'
    const extra = losers.length > 0 ? { mergedProspectIds: losers.map((l) => l.id) } : {}
    changes.events.push(prospectEvent(prospect, type, extra))
    changes.recordMerge({
      accountId: lead.accountId,
      survivorId: prospect.id,
      mergedProspectIds: losers.map((l) => l.id),
      leadId: lead.id,
      keys: holders.map(({ type, value }) => ({ type, value })),
      skippedKeys: skipped,
      at,
    })
  }

  for (const event of lead.body.history ?? []) {
    changes.interactions.push(
      newInteraction(prospect, lead.id, interactionOf(event, lead.body.provider), null, at),
    )
  }
  const merged = candidates.length > 0
  batch.marks.push({
    ...lead,
    status: 'processed',
    processedAt: at,
    prospectId: prospect.id,
    merged,
    error: null,
  })
  changes.events.push({
    accountId: lead.accountId,
    groupId: lead.groupId,
    topic: 'leads',
    type: 'processed',
    subjectId: lead.id,
    sequence: null,
    payload: {
      lead: { id: lead.id, status: 'processed', prospectId: prospect.id, merged },
      prospectId: prospect.id,
    },
  })
  return { status: 'processed', leadId: lead.id, prospectId: prospect.id, merged }
}

async function createProspect(
  batch: Batch,
  lead: Lead,
  group: Group,
  fields: ProspectFields,
  contacts: { phones: Contact[]; emails: Contact[] },
  keys: MatchKey[],
): Promise<Prospect> {
  const { changes, at } = batch
  const phones = unionContacts([], contacts.phones, MAX_PHONES)
  const emails = unionContacts([], contacts.emails, MAX_EMAILS)
  const router = await memo(batch.routers, group.id, async () =>
    GroupRouter.load(
      batch.tx,
      group,
      at,
      await memo(batch.agents, group.id, () => findActiveAgents(batch.tx, group.id)),
    ),
  )
  const routing = router.decide(
    lead.body.agent,
    group.distribution === 'leastLoaded' ? changes.loadChanges() : undefined,
  )
  const previous = keys
    .flatMap((k) => batch.previous.get(accountKey(lead.accountId, `${k.type}:${k.value}`)) ?? [])
    .sort()
    .at(-1)
  const prospect: Prospect = {
    id: newId(at),
    accountId: lead.accountId,
    groupId: group.id,
    initialGroupId: group.id,
    ...fields,
    status: routing.status,
    category: lead.body.category as string,
    label: null,
    phones: phones.contacts,
    emails: emails.contacts,
    additionalData: {},
    agentId: routing.agentId,
    assignedAt: routing.agentId ? at : null,
    transferredAt: null,
    absenceMessage: routing.absenceMessage,
    archivingReason: null,
    userMade: false,
    previousProspectId: previous ?? null,
    mergedInto: null,
    deletedAt: null,
    sequence: 0,
    createdAt: at,
    updatedAt: at,
  }
  changes.events.push(prospectEvent(prospect, 'created'))
  if (routing.agentId) {
    const output = { transferedToAgentId: routing.agentId, transferedToGroupId: group.id }
    changes.interactions.push(newInteraction(prospect, lead.id, { via: 'other', output }, null, at))
    changes.events.push(prospectEvent(prospect, 'assigned', { agentId: routing.agentId, rule: routing.rule }))
  }
  return changes.create(prospect)
}

function reject(batch: Batch, lead: Lead, message: string): ProcessResult {
  const error = { code: 'UNPROCESSABLE_LEAD', message: `No usable contact: ${message}` }
  batch.marks.push({
    ...lead,
    status: 'rejected',
    processedAt: batch.at,
    prospectId: null,
    merged: false,
    error,
  })
  batch.changes.events.push({
    accountId: lead.accountId,
    groupId: lead.groupId,
    topic: 'leads',
    type: 'rejected',
    subjectId: lead.id,
    sequence: null,
    payload: { lead: { id: lead.id, status: 'rejected', error } },
  })
  return { status: 'rejected', leadId: lead.id, error }
}
