import type { Executor } from '../store/database.js'
import { findGroup, type Group, isInSubtree } from '../store/groups.js'
import type { Integration } from '../store/integrations.js'
import { type Prospect, resolveSurvivor } from '../store/prospects.js'
import { findUser, type User } from '../store/users.js'

/**
 * What a key may see: its own account, and inside it only its group's subtree. Anything else is
 * answered as absent (the caller turns it into 404), so a key never learns that an id exists
 * elsewhere.
 */
export async function findVisibleGroup(
  db: Executor,
  integration: Integration,
  groupId: string,
): Promise<Group | undefined> {
  const group = await findGroup(db, integration.accountId, groupId)
  if (!group || !(await isInSubtree(db, integration.groupId, group.id))) return undefined
  return group
}

/** An agent is visible when it takes prospects and belongs to at least one visible group. */
export async function findVisibleAgent(
  db: Executor,
  integration: Integration,
  userId: string,
): Promise<User | undefined> {
  const user = await findUser(db, integration.accountId, userId)
  if (!user?.takesProspects) return undefined
  const member = await db
    .selectFrom('groupMembers')
    .innerJoin('groupClosure', 'groupClosure.descendantId', 'groupMembers.groupId')
    .select('groupMembers.groupId')
    .where('groupMembers.userId', '=', user.id)
    .where('groupClosure.ancestorId', '=', integration.groupId)
    .executeTakeFirst()
  return member ? user : undefined
}

/**
 * The prospect an id names for this key: a merged-away id names its survivor; a deleted prospect
 * or one outside the key's group subtree does not exist.
 */
export async function findVisibleProspect(
  db: Executor,
  integration: Integration,
  id: string,
): Promise<Prospect | undefined> {
  const prospect = await resolveSurvivor(db, integration.accountId, id)
  if (
    !prospect ||
    prospect.deletedAt !== null ||
    !(await isInSubtree(db, integration.groupId, prospect.groupId))
  )
    return undefined
  return prospect
}
