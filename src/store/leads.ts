import type { Selectable } from 'kysely'
import type { StoredLead } from '../domain/lead.js'
import { chunks, type Executor, type LeadsTable } from './database.js'

export type Lead = Omit<Selectable<LeadsTable>, 'body' | 'error' | 'merged' | 'matchKeys'> & {
  body: StoredLead
  error: { code: string; message: string } | null
  merged: boolean
  matchKeys: string[]
}

function fromRow(row: Selectable<LeadsTable>): Lead {
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
  for (const chunk of chunks(leads)) await db.insertInto('leads').values(chunk.map(toLeadRow)).execute()
  const keys = leads.flatMap((lead) =>
    [...new Set(lead.matchKeys)].map((keyValue) => ({
      accountId: lead.accountId,
      keyValue,
      leadId: lead.id,
      receivedAt: lead.receivedAt,
    })),
  )
  for (const chunk of chunks(keys)) await db.insertInto('leadKeys').values(chunk).execute()
}

/**
 * An older lead of the same account that shares a match key with `lead` and is still waiting
 * to be applied (its job alive, not parked as dead): `lead` must wait for it, so one person's
 * leads apply in the order received (receipt time, then id).
 */
export async function findOlderQueuedLead(
  db: Executor,
  lead: Lead,
): Promise<{ leadId: string; runAt: number } | undefined> {
  if (lead.matchKeys.length === 0) return undefined
  return db
    .selectFrom('leadKeys')
    .innerJoin('jobs', 'jobs.subjectId', 'leadKeys.leadId')
    .select(['leadKeys.leadId', 'jobs.runAt'])
    .where('leadKeys.accountId', '=', lead.accountId)
    .where('leadKeys.keyValue', 'in', lead.matchKeys)
    .where((eb) =>
      eb.or([
        eb('leadKeys.receivedAt', '<', lead.receivedAt),
        eb.and([eb('leadKeys.receivedAt', '=', lead.receivedAt), eb('leadKeys.leadId', '<', lead.id)]),
      ]),
    )
    .where('jobs.deadAt', 'is', null)
    .orderBy('jobs.runAt', 'desc')
    .limit(1)
    .executeTakeFirst()
}

export async function forgetLeadKeys(db: Executor, leadId: string): Promise<void> {
  await db.deleteFrom('leadKeys').where('leadId', '=', leadId).execute()
}

export async function findLead(db: Executor, id: string, accountId?: string): Promise<Lead | undefined> {
  let query = db.selectFrom('leads').selectAll().where('id', '=', id)
  if (accountId) query = query.where('accountId', '=', accountId)
  const row = await query.executeTakeFirst()
  return row && fromRow(row)
}

/** The lead row, locked on PostgreSQL so two workers handed the same lead take turns. */
export async function lockLead(db: Executor, id: string, postgres: boolean): Promise<Lead | undefined> {
  let query = db.selectFrom('leads').selectAll().where('id', '=', id)
  if (postgres) query = query.forUpdate()
  const row = await query.executeTakeFirst()
  return row && fromRow(row)
}

export async function findLeadsByProviderRef(
  db: Executor,
  integrationId: string,
  refs: string[],
): Promise<Lead[]> {
  if (refs.length === 0) return []
  const rows = await db
    .selectFrom('leads')
    .selectAll()
    .where('integrationId', '=', integrationId)
    .where('providerRef', 'in', refs)
    .execute()
  return rows.map(fromRow)
}

/** The leads of many prospects at once, in id order. */
export async function findLeadsOfProspects(db: Executor, prospectIds: string[]): Promise<Lead[]> {
  if (prospectIds.length === 0) return []
  const rows = await db
    .selectFrom('leads')
    .selectAll()
    .where('prospectId', 'in', prospectIds)
    .orderBy('id')
    .execute()
  return rows.map(fromRow)
}

export async function findLeadsOfProspect(db: Executor, prospectId: string): Promise<Lead[]> {
  const rows = await db
    .selectFrom('leads')
    .selectAll()
    .where('prospectId', '=', prospectId)
    .orderBy('id')
    .execute()
  return rows.map(fromRow)
}

export async function markLead(
  db: Executor,
  id: string,
  outcome: Pick<Lead, 'status' | 'processedAt' | 'prospectId' | 'merged' | 'error'>,
): Promise<void> {
  await db
    .updateTable('leads')
    .set({
      ...outcome,
      merged: outcome.merged ? 1 : 0,
      error: outcome.error === null ? null : JSON.stringify(outcome.error),
    })
    .where('id', '=', id)
    .execute()
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

/** The (account, group) pairs the given leads belong to. */
export async function findGroupsOfLeads(
  db: Executor,
  ids: string[],
): Promise<{ accountId: string; groupId: string }[]> {
  if (ids.length === 0) return []
  return db.selectFrom('leads').select(['accountId', 'groupId']).distinct().where('id', 'in', ids).execute()
}

export async function findLeadsByIds(db: Executor, ids: string[]): Promise<Lead[]> {
  if (ids.length === 0) return []
  return (await db.selectFrom('leads').selectAll().where('id', 'in', ids).execute()).map(fromRow)
}
