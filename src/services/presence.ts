import type { OfficeHours } from '../domain/office-hours.js'
import { isOnline, isWorking } from '../domain/presence.js'
import type { Executor } from '../store/database.js'
import { findAgentsInSubtree, type User } from '../store/users.js'

/** Office hours and time zone of every group each of `userIds` belongs to. */
async function hoursByUser(db: Executor, userIds: string[]) {
  const byUser = new Map<string, { officeHours: OfficeHours | null; timezone: string }[]>()
  if (userIds.length === 0) return byUser
  const rows = await db
    .selectFrom('groupMembers')
    .innerJoin('groups', 'groups.id', 'groupMembers.groupId')
    .select(['groupMembers.userId', 'groups.officeHours', 'groups.timezone'])
    .where('groupMembers.userId', 'in', userIds)
    .execute()
  for (const row of rows) {
    const hours = {
      officeHours: row.officeHours === null ? null : JSON.parse(row.officeHours),
      timezone: row.timezone,
    }
    byUser.set(row.userId, [...(byUser.get(row.userId) ?? []), hours])
  }
  return byUser
}

export async function isAgentWorking(db: Executor, user: User, at: Date): Promise<boolean> {
  if (!isOnline(user)) return false
  const hours = await hoursByUser(db, [user.id])
  return isWorking(user, hours.get(user.id) ?? [], at)
}

/** Agents of the subtree who are working now (online and inside one of their groups' office hours). */
export async function findWorkingAgents(db: Executor, rootGroupId: string, at: Date): Promise<User[]> {
  const online = await findAgentsInSubtree(db, rootGroupId, { active: true, working: true })
  const hours = await hoursByUser(
    db,
    online.map((u) => u.id),
  )
  return online.filter((user) => isWorking(user, hours.get(user.id) ?? [], at))
}
