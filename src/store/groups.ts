import type { Selectable } from 'kysely'
import type { Industry } from '../domain/industries.js'
import type { OfficeHours } from '../domain/office-hours.js'
import { engineOf } from './connect.js'
import { type Executor, type GroupsTable, reusable, type Tx } from './database.js'

export type LeadCategory = { key: string; name: string }

export type Group = Omit<
  Selectable<GroupsTable>,
  'type' | 'officeHours' | 'leadCategories' | 'industries'
> & {
  type: string[]
  officeHours: OfficeHours | null
  leadCategories: LeadCategory[]
  industries: Industry[]
}

function fromRow(row: Selectable<GroupsTable>): Group {
  return {
    ...row,
    type: JSON.parse(row.type),
    officeHours: row.officeHours === null ? null : JSON.parse(row.officeHours),
    leadCategories: JSON.parse(row.leadCategories),
    industries: JSON.parse(row.industries),
  }
}

/** Inserts a group and its closure rows: itself at depth 0, then every ancestor of its parent. */
export async function insertGroup(db: Executor, group: Group): Promise<void> {
  await db
    .insertInto('groups')
    .values({
      ...group,
      type: JSON.stringify(group.type),
      officeHours: group.officeHours === null ? null : JSON.stringify(group.officeHours),
      leadCategories: JSON.stringify(group.leadCategories),
      industries: JSON.stringify(group.industries),
    })
    .execute()
  await db
    .insertInto('groupClosure')
    .values({ ancestorId: group.id, descendantId: group.id, depth: 0 })
    .execute()
  if (group.parentId) {
    await db
      .insertInto('groupClosure')
      .columns(['ancestorId', 'descendantId', 'depth'])
      .expression((eb) =>
        eb
          .selectFrom('groupClosure')
          .select((s) => [
            'ancestorId',
            s.val(group.id).as('descendantId'),
            s(s.ref('depth'), '+', 1).as('depth'),
          ])
          .where('descendantId', '=', group.parentId),
      )
      .execute()
  }
}

export async function findGroup(db: Executor, accountId: string, id: string): Promise<Group | undefined> {
  const [row] = (await groupById(db, { accountId, id })).rows
  return row && fromRow(row)
}

/** Every lead accepted runs it: compiled once. */
const groupById = reusable((db, v: { accountId: string; id: string }) =>
  db.selectFrom('groups').selectAll().where('accountId', '=', v.accountId).where('id', '=', v.id),
)

/** The groups of `rootId`'s subtree (itself included), oldest first. */
export async function findSubtree(db: Executor, rootId: string): Promise<Group[]> {
  const rows = await db
    .selectFrom('groups')
    .innerJoin('groupClosure', 'groupClosure.descendantId', 'groups.id')
    .selectAll('groups')
    .where('groupClosure.ancestorId', '=', rootId)
    .orderBy('groups.id')
    .execute()
  return rows.map(fromRow)
}

/** True when `groupId` is `rootId` or one of its descendants. One primary-key lookup. */
export async function isInSubtree(db: Executor, rootId: string, groupId: string): Promise<boolean> {
  return (await closureRow(db, { rootId, groupId })).rows.length > 0
}

/** Every read through a key's subtree (and every v1 answer) runs it: compiled once. */
const closureRow = reusable((db, v: { rootId: string; groupId: string }) =>
  db
    .selectFrom('groupClosure')
    .select('depth')
    .where('ancestorId', '=', v.rootId)
    .where('descendantId', '=', v.groupId),
)

export type Lineage = { ancestors: string[]; descendants: string[] }

/** Ancestors (root first) and descendants (nearest first) of each of `ids`. */
export async function findLineage(db: Executor, ids: string[]): Promise<Map<string, Lineage>> {
  const lineage = new Map<string, Lineage>(ids.map((id) => [id, { ancestors: [], descendants: [] }]))
  if (ids.length === 0) return lineage
  const rows = await db
    .selectFrom('groupClosure')
    .selectAll()
    .where('depth', '>', 0)
    .where((eb) => eb.or([eb('ancestorId', 'in', ids), eb('descendantId', 'in', ids)]))
    .execute()
  const byDepth = (a: { depth: number }, b: { depth: number }) => a.depth - b.depth
  for (const row of rows.sort(byDepth)) {
    lineage.get(row.ancestorId)?.descendants.push(row.descendantId)
    lineage.get(row.descendantId)?.ancestors.unshift(row.ancestorId)
  }
  return lineage
}

/** A group by id alone, for operators' tools (the CLI) that start from a group id. */
export async function findGroupById(db: Executor, id: string): Promise<Group | undefined> {
  const row = await db.selectFrom('groups').selectAll().where('id', '=', id).executeTakeFirst()
  return row && fromRow(row)
}

/**
 * Locks a group's row for the rest of the transaction on PostgreSQL (SQLite's write transaction
 * already holds the database): for rules about a group's children that a concurrent transaction
 * could otherwise break, such as one active webhook subscription per group.
 */
export async function lockGroup(tx: Tx, id: string): Promise<void> {
  if (engineOf(tx) === 'postgres')
    await tx.selectFrom('groups').select('id').where('id', '=', id).forUpdate().execute()
}

/** A group's round-robin turn, its row locked on PostgreSQL until the transaction ends. */
export async function lockTurn(db: Executor, id: string): Promise<number> {
  let query = db.selectFrom('groups').select('roundRobinTurn').where('id', '=', id)
  if (engineOf(db) === 'postgres') query = query.forUpdate()
  return Number((await query.executeTakeFirstOrThrow()).roundRobinTurn)
}

/** Advances a group's round-robin counter by the turns taken. */
export async function takeTurns(db: Executor, id: string, count: number): Promise<void> {
  await db
    .updateTable('groups')
    .set((eb) => ({ roundRobinTurn: eb('roundRobinTurn', '+', count) }))
    .where('id', '=', id)
    .execute()
}
