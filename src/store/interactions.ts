import type { Selectable } from 'kysely'
import { type Executor, type InteractionsTable, insertRows, reusable } from './database.js'

export type Interaction = Omit<Selectable<InteractionsTable>, 'output' | 'proactive'> & {
  output: Record<string, unknown>
  proactive: boolean
}

export async function insertInteractions(db: Executor, interactions: Interaction[]): Promise<void> {
  await insertRows(
    db,
    'interactions',
    interactions.map((i) => ({ ...i, output: JSON.stringify(i.output), proactive: i.proactive ? 1 : 0 })),
  )
}

function fromRow(row: Selectable<InteractionsTable>): Interaction {
  return { ...row, output: JSON.parse(row.output), proactive: row.proactive === 1 }
}

export async function findInteractionsOfLead(db: Executor, leadId: string): Promise<Interaction[]> {
  return (await interactionsOfLead(db, { leadId })).rows.map(fromRow)
}

/** Every v1 answer runs it: compiled once. */
const interactionsOfLead = reusable((db, v: { leadId: string }) =>
  db.selectFrom('interactions').selectAll().where('leadId', '=', v.leadId).orderBy('id'),
)

export async function moveInteractions(db: Executor, fromId: string, toId: string): Promise<void> {
  await db.updateTable('interactions').set({ prospectId: toId }).where('prospectId', '=', fromId).execute()
}

export type InteractionFilter = {
  accountId: string
  rootGroupId: string
  prospectId?: string
  agentId?: string
  status?: string
  via?: string[]
  created?: { after?: number; before?: number }
  before?: string
  after?: string
  limit?: number
  order: 'asc' | 'desc'
}

/** Interactions of prospects in the key's group subtree (api.md §4), by id order, with cursors. */
export async function listInteractions(db: Executor, f: InteractionFilter): Promise<Interaction[]> {
  let query = db
    .selectFrom('interactions')
    .innerJoin('prospects', 'prospects.id', 'interactions.prospectId')
    .innerJoin('groupClosure', 'groupClosure.descendantId', 'prospects.groupId')
    .selectAll('interactions')
    .where('groupClosure.ancestorId', '=', f.rootGroupId)
    .where('interactions.accountId', '=', f.accountId)
    .where('prospects.deletedAt', 'is', null)
  if (f.prospectId) query = query.where('interactions.prospectId', '=', f.prospectId)
  if (f.agentId) query = query.where('interactions.agentId', '=', f.agentId)
  if (f.status) query = query.where('interactions.status', '=', f.status as Interaction['status'])
  if (f.via?.length) query = query.where('interactions.via', 'in', f.via)
  if (f.created?.after !== undefined) query = query.where('interactions.createdAt', '>=', f.created.after)
  if (f.created?.before !== undefined) query = query.where('interactions.createdAt', '<=', f.created.before)
  if (f.before) query = query.where('interactions.id', '<', f.before)
  if (f.after) query = query.where('interactions.id', '>', f.after)
  query = query.orderBy('interactions.id', f.order)
  if (f.limit !== undefined) query = query.limit(f.limit)
  return (await query.execute()).map(fromRow)
}

export async function findInteraction(
  db: Executor,
  accountId: string,
  prospectId: string,
  id: string,
): Promise<Interaction | undefined> {
  const row = await db
    .selectFrom('interactions')
    .selectAll()
    .where('accountId', '=', accountId)
    .where('prospectId', '=', prospectId)
    .where('id', '=', id)
    .executeTakeFirst()
  return row && fromRow(row)
}

export async function findInteractionsByIds(db: Executor, ids: string[]): Promise<Interaction[]> {
  if (ids.length === 0) return []
  return (await db.selectFrom('interactions').selectAll().where('id', 'in', ids).execute()).map(fromRow)
}
