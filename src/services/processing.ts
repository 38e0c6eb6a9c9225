import { sql } from 'kysely'
import { newId } from '../domain/ids.js'
import { interactionOf } from '../domain/interactions.js'
import { assessContacts } from '../domain/lead.js'
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
import { appendEvents } from '../store/events.js'
import { findGroup, type Group, lockGroup } from '../store/groups.js'
import { insertInteractions } from '../store/interactions.js'
import {
  findGroupsOfLeads,
  findOlderQueuedLead,
  forgetLeadKeys,
  type Lead,
  lockLead,
  markLead,
} from '../store/leads.js'
import { insertMerge } from '../store/merges.js'
import {
  findPreviousHolder,
  insertProspect,
  linkKeys,
  type Prospect,
  saveProspect,
} from '../store/prospects.js'
import type { User } from '../store/users.js'
import {
  absorb,
  attach,
  type Change,
  lockKeyHolders,
  newInteraction,
  prospectEvent,
  withRaceRetry,
} from './merging.js'
import { decideRouting, findActiveAgents } from './routing.js'

export type ProcessResult =
  | { status: 'processed'; leadId: string; prospectId: string; merged: boolean }
  | { status: 'rejected'; leadId: string; error: { code: string; message: string } }
  | { status: 'missing'; leadId: string }
  /** An older lead of the same person is not applied yet; nothing changed, try again shortly. */
  | { status: 'deferred'; leadId: string; waitingFor: string; until: number }

/** The outcome of a lead that was applied (or found already applied), as callers report it. */
export type AppliedResult = Exclude<ProcessResult, { status: 'deferred' }>

/**
 * Applies one lead (identity.md §4–§6) in one transaction: match, merge, route, record
 * interactions and events, mark the lead and remove its job. Idempotent on the lead id: a lead
 * already applied is left alone, so at-least-once delivery has an exactly-once effect. When a
 * concurrent worker wins a race for the same keys (the active-key unique index refuses the second
 * prospect, or a locked prospect was merged away), the whole transaction is retried and then sees
 * the winner's prospect.
 */
export async function processLead(db: Db, leadId: string, now: () => number): Promise<ProcessResult> {
  return withRaceRetry(db, (tx) => applyLead(tx, leadId, now(), lookupsIn(tx)))
}

/**
 * Applies a claimed batch of leads in transactions of up to 50, each lead under a savepoint: one
 * commit (one fsync on SQLite) for many leads instead of one each. A lead that fails is rolled
 * back to its savepoint and left out of the result; its caller runs it again alone, where
 * failures are retried and recorded. If a transaction itself fails, none of its leads are in the result.
 * Deferred leads are in the result as such (their older lead may be later in the batch).
 * `onCommitted` hears each transaction's results as soon as it commits.
 */
export async function processLeads(
  db: Db,
  leadIds: string[],
  now: () => number,
  onCommitted?: (results: ProcessResult[]) => void,
): Promise<Map<string, ProcessResult>> {
  const results = new Map<string, ProcessResult>()
  for (const chunk of chunks(leadIds, LEADS_PER_TRANSACTION)) {
    const applied = new Map<string, ProcessResult>()
    try {
      await db.transaction().execute(async (tx) => {
        const lookups = lookupsIn(tx)
        if (engineOf(tx) === 'postgres') await lockTurns(tx, chunk, lookups)
        for (const leadId of chunk) {
          await sql`savepoint lead`.execute(tx)
          try {
            applied.set(leadId, await applyLead(tx, leadId, now(), lookups))
          } catch {
            await sql`rollback to savepoint lead`.execute(tx)
          }
          await sql`release savepoint lead`.execute(tx)
        }
      })
    } catch {
      continue
    }
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
 * A round-robin turn is a row lock on its group (decideRouting), held until the transaction
 * commits. On PostgreSQL a transaction takes the locks of all its leads' round-robin groups first,
 * in id order, so two workers' batches queue for a group instead of deadlocking over two.
 */
async function lockTurns(tx: Transaction, leadIds: string[], lookups: Lookups): Promise<void> {
  const turns: string[] = []
  for (const { accountId, groupId } of await findGroupsOfLeads(tx, leadIds)) {
    const group = await lookups.group(accountId, groupId)
    if (group?.distribution === 'roundRobin') turns.push(group.id)
  }
  for (const id of turns.sort()) await lockGroup(tx, id)
}

/**
 * Enough leads to share one commit, few enough that a transaction holds SQLite's write lock (and
 * the API requests of the same process waiting behind it) for tens of milliseconds, not seconds.
 */
const LEADS_PER_TRANSACTION = 50 // PostgreSQL caches 64 subtransactions per transaction; stay below

/**
 * The reads every lead of a batch repeats, made once per transaction: the group's settings, the
 * account's blocked values and the group's active agents. Any may change meanwhile; a batch then
 * applies as of its start (who is working now, and agents' loads, are still read per lead).
 */
type Lookups = {
  group: (accountId: string, groupId: string) => Promise<Group | undefined>
  blocked: (accountId: string) => Promise<ReadonlySet<string>>
  agents: (groupId: string) => Promise<User[]>
}

function lookupsIn(tx: Transaction): Lookups {
  const groups = new Map<string, Promise<Group | undefined>>()
  const blocked = new Map<string, Promise<ReadonlySet<string>>>()
  const agents = new Map<string, Promise<User[]>>()
  return {
    group: (accountId, groupId) =>
      memo(groups, `${accountId}/${groupId}`, () => findGroup(tx, accountId, groupId)),
    blocked: (accountId) => memo(blocked, accountId, () => findBlockedValues(tx, accountId)),
    agents: (groupId) => memo(agents, groupId, () => findActiveAgents(tx, groupId)),
  }
}

function memo<T>(cache: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
  let value = cache.get(key)
  if (!value) {
    value = load()
    cache.set(key, value)
  }
  return value
}

async function applyLead(
  tx: Transaction,
  leadId: string,
  at: number,
  lookups: Lookups,
): Promise<ProcessResult> {
  const postgres = engineOf(tx) === 'postgres'
  const lead = await lockLead(tx, leadId, postgres)
  if (lead?.status === 'queued') {
    const older = await findOlderQueuedLead(tx, lead)
    if (older) return { status: 'deferred', leadId, waitingFor: older.leadId, until: older.runAt }
  }
  // From here the lead is applied (or was already): its job and its queued keys are done with.
  await completeJobsOf(tx, leadId)
  await forgetLeadKeys(tx, leadId)
  if (!lead) return { status: 'missing', leadId }
  if (lead.status === 'processed')
    return { status: 'processed', leadId, prospectId: lead.prospectId as string, merged: lead.merged }
  if (lead.status === 'rejected')
    return { status: 'rejected', leadId, error: lead.error ?? { code: 'UNPROCESSABLE_LEAD', message: '' } }

  const group = await lookups.group(lead.accountId, lead.groupId)
  if (!group) throw new Error(`lead ${lead.id}: group ${lead.groupId} is gone`)
  const contacts = assessContacts(lead.body, group.countryCode, await lookups.blocked(lead.accountId))
  if (!contacts.usable)
    return reject(tx, lead, contacts.problems.map((p) => `${p.path} ${p.message}`).join('; '), at)

  const { phones, emails, keys } = matchable(contacts)

  const { holders, candidates } = await lockKeyHolders(tx, lead.accountId, keys)

  const change: Change = { events: [], interactions: [] }
  const fromLead = fieldsFromLead(lead.body)
  let prospect: Prospect
  if (candidates.length === 0) {
    const agents = await lookups.agents(group.id)
    prospect = await createProspect(tx, lead, group, fromLead, { phones, emails }, keys, change, at, agents)
  } else {
    prospect = chooseSurvivor(candidates)
    const losers = candidates.filter((c) => c.id !== prospect.id)
    const skipped: (Contact & { type: string })[] = []
    for (const loser of losers) skipped.push(...(await absorb(tx, prospect, loser, change, at)))
    skipped.push(...(await attach(tx, prospect, fromLead, { phones, emails })))
    prospect.updatedAt = at
    const type = losers.length > 0 ? 'merged' : 'updated'
    const extra = losers.length > 0 ? { mergedProspectIds: losers.map((l) => l.id) } : {}
    change.events.push(prospectEvent(prospect, type, extra))
    await insertMerge(tx, {
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
    change.interactions.push(
      newInteraction(prospect, lead.id, interactionOf(event, lead.body.provider), null, at),
    )
  }
  const merged = candidates.length > 0
  if (merged) await saveProspect(tx, prospect)
  await insertInteractions(tx, change.interactions)
  await markLead(tx, lead.id, {
    status: 'processed',
    processedAt: at,
    prospectId: prospect.id,
    merged,
    error: null,
  })
  change.events.push({
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
  await appendEvents(tx, change.events, at)
  return { status: 'processed', leadId: lead.id, prospectId: prospect.id, merged }
}

async function createProspect(
  tx: Transaction,
  lead: Lead,
  group: Group,
  fields: ProspectFields,
  contacts: { phones: Contact[]; emails: Contact[] },
  keys: MatchKey[],
  change: Change,
  at: number,
  agents: User[],
): Promise<Prospect> {
  const phones = unionContacts([], contacts.phones, MAX_PHONES)
  const emails = unionContacts([], contacts.emails, MAX_EMAILS)
  const routing = await decideRouting(tx, group, lead.body.agent, at, agents)
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
    previousProspectId: await findPreviousHolder(tx, lead.accountId, keys),
    mergedInto: null,
    deletedAt: null,
    sequence: 0,
    createdAt: at,
    updatedAt: at,
  }
  change.events.push(prospectEvent(prospect, 'created'))
  if (routing.agentId) {
    const output = { transferedToAgentId: routing.agentId, transferedToGroupId: group.id }
    change.interactions.push(newInteraction(prospect, lead.id, { via: 'other', output }, null, at))
    change.events.push(prospectEvent(prospect, 'assigned', { agentId: routing.agentId, rule: routing.rule }))
  }
  // Inserted once its events have numbered it, so the new row needs no second write.
  await insertProspect(tx, prospect)
  await linkKeys(tx, lead.accountId, prospect.id, [
    ...phones.linked.map((c) => ({ type: 'phone' as const, key: c.key })),
    ...emails.linked.map((c) => ({ type: 'email' as const, key: c.key })),
  ])
  return prospect
}

async function reject(tx: Transaction, lead: Lead, message: string, at: number): Promise<ProcessResult> {
  const error = { code: 'UNPROCESSABLE_LEAD', message: `No usable contact: ${message}` }
  await markLead(tx, lead.id, { status: 'rejected', processedAt: at, prospectId: null, merged: false, error })
  const payload = { lead: { id: lead.id, status: 'rejected', error } }
  await appendEvents(
    tx,
    [
      {
        accountId: lead.accountId,
        groupId: lead.groupId,
        topic: 'leads',
        type: 'rejected',
        subjectId: lead.id,
        sequence: null,
        payload,
      },
    ],
    at,
  )
  return { status: 'rejected', leadId: lead.id, error }
}
