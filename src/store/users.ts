import type { Selectable } from 'kysely'
import type { Executor, UsersTable } from './database.js'

export type User = Omit<
  Selectable<UsersTable>,
  'externalId' | 'appFields' | 'active' | 'working' | 'takesProspects'
> & {
  externalId: Record<string, unknown> | null
  appFields: Record<string, unknown> | null
  active: boolean
  working: boolean
  takesProspects: boolean
}

export function userFromRow(row: Selectable<UsersTable>): User {
  return {
    ...row,
    externalId: row.externalId === null ? null : JSON.parse(row.externalId),
    appFields: row.appFields === null ? null : JSON.parse(row.appFields),
    active: row.active === 1,
    working: row.working === 1,
    takesProspects: row.takesProspects === 1,
  }
}

export async function insertUser(db: Executor, user: User, groupIds: string[]): Promise<void> {
  await db
    .insertInto('users')
    .values({
      ...user,
      externalId: user.externalId === null ? null : JSON.stringify(user.externalId),
      appFields: user.appFields === null ? null : JSON.stringify(user.appFields),
      active: user.active ? 1 : 0,
      working: user.working ? 1 : 0,
      takesProspects: user.takesProspects ? 1 : 0,
    })
    .execute()
  if (groupIds.length > 0) {
    await db
      .insertInto('groupMembers')
      .values(groupIds.map((groupId) => ({ groupId, userId: user.id })))
      .execute()
  }
}

export async function findUser(db: Executor, accountId: string, id: string): Promise<User | undefined> {
  const row = await db
    .selectFrom('users')
    .selectAll()
    .where('accountId', '=', accountId)
    .where('id', '=', id)
    .executeTakeFirst()
  return row && userFromRow(row)
}

export async function findUserByEmail(
  db: Executor,
  accountId: string,
  email: string,
): Promise<User | undefined> {
  const row = await db
    .selectFrom('users')
    .selectAll()
    .where('accountId', '=', accountId)
    .where('email', '=', email.toLowerCase())
    .executeTakeFirst()
  return row && userFromRow(row)
}

/**
 * Agents of `rootGroupId`'s subtree: users who take prospects and belong to at least one group of
 * the subtree, each once, oldest first.
 */
export async function findAgentsInSubtree(
  db: Executor,
  rootGroupId: string,
  filter: { active?: boolean; working?: boolean } = {},
): Promise<User[]> {
  let query = db
    .selectFrom('users')
    .selectAll()
    .where('takesProspects', '=', 1)
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('groupMembers')
          .innerJoin('groupClosure', 'groupClosure.descendantId', 'groupMembers.groupId')
          .select('groupMembers.userId')
          .whereRef('groupMembers.userId', '=', 'users.id')
          .where('groupClosure.ancestorId', '=', rootGroupId),
      ),
    )
  if (filter.active !== undefined) query = query.where('active', '=', filter.active ? 1 : 0)
  if (filter.working !== undefined) query = query.where('working', '=', filter.working ? 1 : 0)
  const rows = await query.orderBy('id').execute()
  return rows.map(userFromRow)
}
