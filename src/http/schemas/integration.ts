import { type Static, Type } from 'typebox'
import { ALL_SCOPES } from '../../domain/scopes.js'
import { AgentSchema } from './agent.js'
import { ObjectIdSchema } from './common.js'

export const IntegrationSchema = Type.Object(
  {
    id: ObjectIdSchema,
    name: Type.String(),
    providerKey: Type.String({
      description: '`api.` + the scopes joined with `_`',
      examples: ['api.leads:write_prospects:read'],
    }),
    groupId: ObjectIdSchema,
    group: Type.String({ description: 'Name of the group the integration is assigned to' }),
    user: Type.Optional(AgentSchema),
    language: Type.Optional(Type.String()),
    account: Type.String(),
    accountId: ObjectIdSchema,
    scopes: Type.Array(Type.String({ enum: ALL_SCOPES }), { description: 'ext' }),
  },
  { $id: 'Integration', title: 'Integration' },
)

export type IntegrationView = Static<typeof IntegrationSchema>

export const IndustrySchema = Type.Object(
  { name: Type.String({ examples: ['retail'] }) },
  { $id: 'Industry', title: 'Industry' },
)
