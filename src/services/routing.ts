import { isWithinOfficeHours } from '../domain/office-hours.js'
import { type RoutingDecision, type RoutingInput, routeProspect } from '../domain/routing.js'
import type { Executor } from '../store/database.js'
import { type Group, lockTurn, takeTurns } from '../store/groups.js'
import { countOpenProspects } from '../store/prospects.js'
import { findAgentsInSubtree, type User } from '../store/users.js'
import { findWorkingAgents } from './presence.js'

/**
 * Routes the new prospects of one group within one transaction (identity.md §5). What routing
 * needs is read once: the group's active agents, who of them works now, the round-robin turn
 * (its row locked on PostgreSQL until commit, so concurrent workers take consecutive turns
 * instead of picking the same agent) and, for leastLoaded, the agents' open prospects. Each
 * decision then takes the next turn in memory, and `save` stores the turns taken.
 */
export class GroupRouter {
  private taken = 0

  private constructor(
    private readonly groupId: string,
    private readonly input: Omit<RoutingInput, 'hint'>,
  ) {}

  /** A caller routing many groups' prospects may pass each group's active agents, read once. */
  static async load(db: Executor, group: Group, at: number, agents?: User[]): Promise<GroupRouter> {
    const working =
      group.distribution === 'none'
        ? []
        : (await findWorkingAgents(db, group.id, new Date(at))).map((a) => a.id).sort()
    const contested = working.length > 0
    return new GroupRouter(group.id, {
      agents: agents ?? (await findActiveAgents(db, group.id)),
      working,
      distribution: group.distribution,
      turn: contested && group.distribution === 'roundRobin' ? await lockTurn(db, group.id) : 0,
      loads:
        contested && group.distribution === 'leastLoaded' ? await countOpenProspects(db, working) : new Map(),
      withinOfficeHours: isWithinOfficeHours(group.officeHours, group.timezone, new Date(at)),
      absenceMessage: group.absenceMessage,
    })
  }

  /**
   * Routes one new prospect. `loadChanges` are the open prospects each agent gained or lost in
   * this transaction since the loads were read (new prospects, merges).
   */
  decide(hint: string | undefined, loadChanges: ReadonlyMap<string, number> = new Map()): RoutingDecision {
    const loads = new Map(this.input.loads)
    for (const [agentId, change] of loadChanges)
      if (loads.has(agentId)) loads.set(agentId, (loads.get(agentId) ?? 0) + change)
    const decision = routeProspect({ ...this.input, hint, turn: this.input.turn + this.taken, loads })
    if (decision.rule === 'roundRobin') this.taken += 1
    return decision
  }

  /** Stores the round-robin turns taken; call it in the same transaction. */
  async save(db: Executor): Promise<void> {
    if (this.taken > 0) await takeTurns(db, this.groupId, this.taken)
  }
}

/** Routes one prospect into `group` (a transfer): reads, decides and stores the turn taken. */
export async function decideRouting(
  db: Executor,
  group: Group,
  hint: string | undefined,
  at: number,
): Promise<RoutingDecision> {
  const router = await GroupRouter.load(db, group, at)
  const decision = router.decide(hint)
  await router.save(db)
  return decision
}

/** The active agents of a group's subtree: who routing may choose from. */
export function findActiveAgents(db: Executor, groupId: string): Promise<User[]> {
  return findAgentsInSubtree(db, groupId, { active: true })
}
