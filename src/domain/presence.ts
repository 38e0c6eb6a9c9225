import { isWithinOfficeHours, type OfficeHours } from './office-hours.js'

type Person = { active: boolean; working: boolean }
type Hours = { officeHours: OfficeHours | null; timezone: string }

/** Online: an active agent who marked themselves working. */
export function isOnline(person: Person): boolean {
  return person.active && person.working
}

/**
 * "Working" (api.md §5): online, and now is inside the office hours of at least one of the agent's
 * groups, each read in that group's own time zone. An agent of two branches in different time
 * zones is working while either branch is open.
 */
export function isWorking(person: Person, groups: readonly Hours[], at: Date): boolean {
  return isOnline(person) && groups.some((g) => isWithinOfficeHours(g.officeHours, g.timezone, at))
}
