import { type Static, Type } from 'typebox'
import { WEEKDAYS } from '../../domain/office-hours.js'
import type { Group, Lineage } from '../../store/groups.js'
import { AgentSchema } from './agent.js'
import { ObjectIdSchema } from './common.js'

const TimeRangeSchema = Type.Object({
  from: Type.String({ pattern: '^([01]\\d|2[0-3]):[0-5]\\d$' }),
  to: Type.String({ pattern: '^([01]\\d|2[0-4]):[0-5]\\d$' }),
})

export const OfficeHoursSchema = Type.Union(
  [
    Type.Object(Object.fromEntries(WEEKDAYS.map((d) => [d, Type.Optional(Type.Array(TimeRangeSchema))]))),
    Type.Null(),
  ],
  { description: "Per weekday, in the group's time zone; null = always open (ext)" },
)

export const GroupNodeSchema = Type.Object(
  {
    id: ObjectIdSchema,
    displayName: Type.String(),
    name: Type.String(),
    parent: Type.Optional(ObjectIdSchema),
    ancestors: Type.Array(ObjectIdSchema, { description: 'Root first' }),
    descendants: Type.Array(ObjectIdSchema),
    type: Type.Array(Type.String()),
    timezone: Type.String({ description: 'IANA time zone' }),
    countryCode: Type.String(),
    officeHours: OfficeHoursSchema,
    distribution: Type.Union(
      [Type.Literal('none'), Type.Literal('roundRobin'), Type.Literal('leastLoaded')],
      {
        description: 'ext',
      },
    ),
    absenceMessage: Type.Optional(Type.String({ description: 'ext' })),
  },
  { $id: 'GroupNode', title: 'GroupNode' },
)

export type GroupNode = Static<typeof GroupNodeSchema>

export const OnlineAgentsSchema = Type.Object({
  officeHours: Type.Boolean({ description: "True when now is inside the group's office hours" }),
  agents: Type.Array(AgentSchema),
})

export function toGroupNode(group: Group, lineage: Lineage): GroupNode {
  return {
    id: group.id,
    displayName: group.displayName,
    name: group.name,
    ...(group.parentId ? { parent: group.parentId } : {}),
    ancestors: lineage.ancestors,
    descendants: lineage.descendants,
    type: group.type,
    timezone: group.timezone,
    countryCode: group.countryCode,
    officeHours: group.officeHours,
    distribution: group.distribution,
    ...(group.absenceMessage ? { absenceMessage: group.absenceMessage } : {}),
  }
}
