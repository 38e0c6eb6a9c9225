import { isWithinOfficeHours } from '../domain/office-hours.js'
import { matchAgentHint, type RoutingDecision, routeProspect } from '../domain/routing.js'
import type { Executor } from '../store/database.js'
import type { Group } from '../store/groups.js'
import { countOpenProspects } from '../store/prospects.js'
import { findAgentsInSubtree, type User } from '../store/users.js'
import { findWorkingAgents } from './presence.js'

/**
 * Gathers what routing needs (agents, who works now, the round-robin turn, loads) and asks the
 * pure rule. The round-robin counter is bumped in the caller's transaction, so concurrent
 * workers take consecutive turns instead of picking the same agent. A caller routing many
 * prospects of one group may pass the group's active agents, read once (findActiveAgents).
 */
export async function decideRouting(
  db: Executor,
  group: Group,
  hint: string | undefined,
  at: number,
  agents?: User[],
): Promise<RoutingDecision> {
  agents ??= await findActiveAgents(db, group.id)
  const withinOfficeHours = isWithinOfficeHours(group.officeHours, group.timezone, new Date(at))
  const base = {
    hint,
    agents,
    distribution: group.distribution,
    turn: 0,
    loads: new Map(),
    withinOfficeHours,
    absenceMessage: group.absenceMessage,
  }
  if (hint && matchAgentHint(hint, agents)) return routeProspect({ ...base, working: [] })
  const working =
    group.distribution === 'none'
      ? []
      : (await findWorkingAgents(db, group.id, new Date(at))).map((a) => a.id).sort()
  if (working.length === 0) return routeProspect({ ...base, working })
  if (group.distribution === 'roundRobin') {
    const bumped = await db
      .updateTable('groups')
      .set((eb) => ({ roundRobinTurn: eb('roundRobinTurn', '+', 1) }))
      .where('id', '=', group.id)
      .returning('roundRobinTurn')
      .executeTakeFirstOrThrow()
    return routeProspect({ ...base, working, turn: Number(bumped.roundRobinTurn) - 1 })
  }
  return routeProspect({ ...base, working, loads: await countOpenProspects(db, working) })
}

/** The active agents of a group's subtree: who routing may choose from. */
export function findActiveAgents(db: Executor, groupId: string): Promise<User[]> {
  return findAgentsInSubtree(db, groupId, { active: true })
}
