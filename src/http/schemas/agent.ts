import { type Static, Type } from 'typebox'
import type { User } from '../../store/users.js'
import { ObjectIdSchema } from './common.js'

export const AgentSchema = Type.Object(
  {
    id: ObjectIdSchema,
    firstName: Type.String(),
    lastName: Type.String(),
    email: Type.Optional(Type.String()),
    phone: Type.Optional(Type.String()),
    legacyId: Type.Optional(Type.String()),
    externalId: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    appFields: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { title: 'Agent' },
)

export type Agent = Static<typeof AgentSchema>

export const WorkingSchema = Type.Object({ working: Type.Boolean() })

/** A user as the API shows it: absent values are left out rather than sent as null. */
export function toAgent(user: User): Agent {
  return {
    id: user.id,
    firstName: user.firstName,
    lastName: user.lastName,
    email: user.email,
    ...(user.phone ? { phone: user.phone } : {}),
    ...(user.legacyId ? { legacyId: user.legacyId } : {}),
    ...(user.externalId ? { externalId: user.externalId } : {}),
    ...(user.appFields ? { appFields: user.appFields } : {}),
  }
}

const responseTimeFields = {
  averageSeconds: Type.Union([Type.Number(), Type.Null()]),
  samples: Type.Integer({
    description: 'prospects assigned in the last 30 days that their agent has answered',
  }),
}

/** `{agentId, averageSeconds, samples}` and `{groupId, …}` (api.md §5). */
export const AgentResponseTimeSchema = Type.Object({ agentId: ObjectIdSchema, ...responseTimeFields })
export const GroupResponseTimeSchema = Type.Object({ groupId: ObjectIdSchema, ...responseTimeFields })
