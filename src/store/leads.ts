import type { Selectable } from 'kysely'
import type { StoredLead } from '../domain/lead.js'
import {
  chunks,
  type Executor,
  insertRows,
  type LeadsTable,
  reusable,
  updateRows,
  withPlanMethodOff,
} from './database.js'

export type Lead = Omit<Selectable<LeadsTable>, 'body' | 'error' | 'merged' | 'matchKeys'> & {
  body: StoredLead
  error: { code: string; message: string } | null
  merged: boolean
  matchKeys: string[]
}

export function leadFromRow(row: Selectable<LeadsTable>): Lead {
  return {
    ...row,
    body: JSON.parse(row.body),
    error: row.error === null ? null : JSON.parse(row.error),
    merged: row.merged === 1,
    matchKeys: JSON.parse(row.matchKeys),
  }
}

function toLeadRow(lead: Lead) {
  return {
    ...lead,
    body: JSON.stringify(lead.body),
    error: lead.error === null ? null : JSON.stringify(lead.error),
    merged: lead.merged ? 1 : 0,
    matchKeys: JSON.stringify(lead.matchKeys),
  }
}

/** Inserts leads and indexes their match keys while they are queued. */
export async function insertLeads(db: Executor, leads: Lead[]): Promise<void> {
  await insertRows(db, 'leads', leads.map(toLeadRow))
  const keys = leads.flatMap((lead) =>
    [...new Set(lead.matchKeys)].map((keyValue) => ({
      accountId: lead.accountId,
      keyValue,
      leadId: lead.id,
      receivedAt: lead.receivedAt,
    })),
  )
  await insertRows(db, 'leadKeys', keys)
}

/** A match key of a queued lead whose job is alive (not parked as dead), and when the job runs. */
export type QueuedKey = { leadId: string; keyValue: string; receivedAt: number; runAt: number }

/**
 * The queued leads of an account that hold any of `keyValues` and were received by `until`:
 * a lead must wait for the older ones of its person, so one person's leads apply in the order
 * received (receipt time, then id).
 *
 * Two reads, each by the first column of one index: the keys by value, then their leads' jobs by
 * subject, joined here. As one join, PostgreSQL planned with the statistics of a drained queue
 * (a burst fills these tables faster than autovacuum analyzes them) and, believing both sides
 * nearly empty, compared every queued key with every live job: over a second for 320 keys at
 * 16,686 queued. With other statistics it scanned `lead_keys` and hashed every live job (4.7–12
 * ms a read, BENCHMARKS.md §3). On PostgreSQL the reads also run with sequential scans off
 * (`withPlanMethodOff`): the planner rates a scan of a table in memory below a few hundred index
 * lookups, which took 1.6 ms against its 3–13.
 */
export async function findQueuedKeys(
  db: Executor,
  accountId: string,
  keyValues: string[],
  until: number,
): Promise<QueuedKey[]> {
  return withPlanMethodOff(db, 'enable_seqscan', async (tx) => {
    const keys: Omit<QueuedKey, 'runAt'>[] = []
    for (const values of chunks([...new Set(keyValues)]))
      keys.push(...(await keysHeld(tx, { accountId, values, until })).rows)
    const runs = new Map<string, number[]>()
    for (const ids of chunks([...new Set(keys.map((k) => k.leadId))])) {
      for (const job of (await jobsOf(tx, { ids })).rows) {
        if (job.deadAt !== null) continue
        const list = runs.get(job.subjectId) ?? []
        list.push(job.runAt)
        runs.set(job.subjectId, list)
      }
    }
    return keys.flatMap((key) => (runs.get(key.leadId) ?? []).map((runAt) => ({ ...key, runAt })))
  })
}

const keysHeld = reusable((db, v: { accountId: string; values: string[]; until: number }) =>
  db
    .selectFrom('leadKeys')
    .select(['leadId', 'keyValue', 'receivedAt'])
    .where('keyValue', 'in', v.values)
    .where('accountId', '=', v.accountId)
    .where('receivedAt', '<=', v.until),
)

const jobsOf = reusable((db, v: { ids: string[] }) =>
  db.selectFrom('jobs').select(['subjectId', 'runAt', 'deadAt']).where('subjectId', 'in', v.ids),
)

export async function forgetLeadKeys(db: Executor, leadIds: string[]): Promise<void> {
  for (const ids of chunks(leadIds)) await keysOfLeadsDeleted(db, { ids })
}

const keysOfLeadsDeleted = reusable((db, v: { ids: string[] }) =>
  db.deleteFrom('leadKeys').where('leadId', 'in', v.ids),
)

export async function findLead(db: Executor, id: string, accountId?: string): Promise<Lead | undefined> {
  let query = db.selectFrom('leads').selectAll().where('id', '=', id)
  if (accountId) query = query.where('accountId', '=', accountId)
  const row = await query.executeTakeFirst()
  return row && leadFromRow(row)
}

/** The rows of leads, locked on PostgreSQL so two workers handed the same lead take turns. */
export async function lockLeads(
  db: Executor,
  ids: string[],
  postgres: boolean,
): Promise<Selectable<LeadsTable>[]> {
  const rows: Selectable<LeadsTable>[] = []
  for (const chunk of chunks(ids))
    rows.push(...(await (postgres ? leadsLocked : leadsByIds)(db, { ids: chunk })).rows)
  return rows
}

const leadsIn = (db: Executor, ids: string[]) =>
  db.selectFrom('leads').selectAll().where('id', 'in', ids).orderBy('id')
const leadsByIds = reusable((db, v: { ids: string[] }) => leadsIn(db, v.ids))
/** Kept apart from `leadsByIds`: webhook bodies read leads by id and must not lock them. */
const leadsLocked = reusable((db, v: { ids: string[] }) => leadsIn(db, v.ids).forUpdate())

export async function findLeadsByProviderRef(
  db: Executor,
  integrationId: string,
  refs: string[],
): Promise<Lead[]> {
  if (refs.length === 0) return []
  return (await leadsByRef(db, { integrationId, refs })).rows.map(leadFromRow)
}

const leadsByRef = reusable((db, v: { integrationId: string; refs: string[] }) =>
  db
    .selectFrom('leads')
    .selectAll()
    .where('integrationId', '=', v.integrationId)
    .where('providerRef', 'in', v.refs),
)

/** The leads of many prospects at once, in id order. */
export async function findLeadsOfProspects(db: Executor, prospectIds: string[]): Promise<Lead[]> {
  if (prospectIds.length === 0) return []
  return (await leadsOfProspects(db, { prospectIds })).rows.map(leadFromRow)
}

const leadsOfProspects = reusable((db, v: { prospectIds: string[] }) =>
  db.selectFrom('leads').selectAll().where('prospectId', 'in', v.prospectIds).orderBy('id'),
)

export async function findLeadsOfProspect(db: Executor, prospectId: string): Promise<Lead[]> {
  return (await leadsOfProspect(db, { prospectId })).rows.map(leadFromRow)
}

/** Every v1 answer runs it: compiled once. */
const leadsOfProspect = reusable((db, v: { prospectId: string }) =>
  db.selectFrom('leads').selectAll().where('prospectId', '=', v.prospectId).orderBy('id'),
)

/** Moves the leads of a prospect merged away to its survivor. */
export async function moveLeads(db: Executor, fromId: string, toId: string): Promise<void> {
  await db.updateTable('leads').set({ prospectId: toId }).where('prospectId', '=', fromId).execute()
}

/**
 * Records leads' outcomes (status, time, prospect, merged, error): an update from a list of just
 * those columns. (An upsert of whole rows, before, serialized and bound every lead's body again
 * to change five columns.)
 */
export async function markLeads(db: Executor, leads: Lead[]): Promise<void> {
  const outcomes = leads.map((l) => ({
    id: l.id,
    status: l.status,
    processedAt: l.processedAt,
    prospectId: l.prospectId,
    merged: l.merged ? 1 : 0,
    error: l.error === null ? null : JSON.stringify(l.error),
  }))
  await updateRows(db, 'leads', 'id', outcomes, { types: { processedAt: 'bigint', merged: 'integer' } })
}

/** Idempotency keys live 24 hours (api.md §2.1). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000

export async function findIdempotencyKey(db: Executor, integrationId: string, key: string, now: number) {
  return db
    .selectFrom('idempotencyKeys')
    .selectAll()
    .where('integrationId', '=', integrationId)
    .where('key', '=', key)
    .where('createdAt', '>', now - IDEMPOTENCY_TTL_MS)
    .executeTakeFirst()
}

export async function saveIdempotencyKey(
  db: Executor,
  row: { integrationId: string; key: string; requestHash: string; leadId: string; createdAt: number },
) {
  await db
    .deleteFrom('idempotencyKeys')
    .where('integrationId', '=', row.integrationId)
    .where('key', '=', row.key)
    .execute()
  await db.insertInto('idempotencyKeys').values(row).execute()
}

export async function findLeadsByIds(db: Executor, ids: string[]): Promise<Lead[]> {
  if (ids.length === 0) return []
  return (await leadsByIds(db, { ids })).rows.map(leadFromRow)
}
