import { foldName } from './names.js'

/**
 * Routing a new prospect (identity.md §5), pure: given the group's agents and who is working,
 * decide the agent and the status. The caller supplies the round-robin turn and the loads.
 */
export type Candidate = {
  id: string
  firstName: string
  lastName: string
  email: string
  legacyId: string | null
}

export type RoutingInput = {
  hint: string | undefined
  agents: Candidate[]
  /** Ids of the agents working now, in a stable order (by id). */
  working: string[]
  distribution: 'none' | 'roundRobin' | 'leastLoaded'
  /** The group's round-robin counter before this assignment. */
  turn: number
  /** Open prospects per working agent (leastLoaded). */
  loads: Map<string, number>
  withinOfficeHours: boolean
  absenceMessage: string | null
}

export type RoutingDecision = {
  agentId: string | null
  status: 'new' | 'unclaimed'
  rule: 'hint' | 'roundRobin' | 'leastLoaded' | null
  absenceMessage: string | null
}

export function matchAgentHint(hint: string, agents: Candidate[]): Candidate | undefined {
  const wanted = foldName(hint)
  if (!wanted) return undefined
  return (
    agents.find((a) => a.legacyId !== null && foldName(a.legacyId) === wanted) ??
    agents.find((a) => foldName(a.email) === wanted) ??
    agents.find((a) => foldName(`${a.firstName} ${a.lastName}`) === wanted)
  )
}

export function routeProspect(input: RoutingInput): RoutingDecision {
  const hinted = input.hint ? matchAgentHint(input.hint, input.agents) : undefined
  if (hinted) return { agentId: hinted.id, status: 'new', rule: 'hint', absenceMessage: null }
  if (input.distribution !== 'none' && input.working.length > 0) {
    const agentId =
      input.distribution === 'roundRobin'
        ? (input.working[input.turn % input.working.length] as string)
        : input.working.reduce((best, id) =>
            (input.loads.get(id) ?? 0) < (input.loads.get(best) ?? 0) ? id : best,
          )
    return { agentId, status: 'new', rule: input.distribution, absenceMessage: null }
  }
  const absenceMessage = !input.withinOfficeHours && input.absenceMessage ? input.absenceMessage : null
  return { agentId: null, status: 'unclaimed', rule: null, absenceMessage }
}
