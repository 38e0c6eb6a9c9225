import { type Static, Type } from 'typebox'
import { AgentSchema } from './agent.js'
import { DateTimeSchema, ObjectIdSchema } from './common.js'

/** LeadData: a lead as stored, inside Prospect.leads (api.md §2.2). Open: it echoes the lead's fields. */
export const LeadDataSchema = Type.Object(
  {
    id: ObjectIdSchema,
    created: DateTimeSchema,
    type: Type.String({ description: 'retail | insurance | vehicle | savingPlan | realEstate' }),
    providerKey: Type.String(),
    utmSource: Type.String(),
    source: Type.String({ description: 'echo of utmSource, as the original sends' }),
    phones: Type.Array(Type.String(), { description: 'as received' }),
    emails: Type.Array(Type.String(), { description: 'as received' }),
  },
  { title: 'LeadData', additionalProperties: true },
)

export const InteractionSchema = Type.Object(
  {
    id: ObjectIdSchema,
    prospectId: ObjectIdSchema,
    agentId: Type.Optional(ObjectIdSchema),
    agent: Type.Optional(AgentSchema),
    createdAt: DateTimeSchema,
    status: Type.Union([Type.Literal('created'), Type.Literal('updated')]),
    proactive: Type.Boolean(),
    via: Type.String(),
    output: Type.Record(Type.String(), Type.Unknown()),
  },
  { title: 'Interaction' },
)

const prospectFields = {
  id: ObjectIdSchema,
  created: DateTimeSchema,
  account: Type.String(),
  accountId: ObjectIdSchema,
  group: Type.String(),
  groupId: ObjectIdSchema,
  initialGroup: Type.String(),
  initialGroupId: ObjectIdSchema,
  firstName: Type.String(),
  lastName: Type.Optional(Type.String()),
  status: Type.Enum(['unclaimed', 'new', 'followUp', 'processing', 'archived']),
  category: Type.String(),
  label: Type.Optional(Type.String()),
  nin: Type.Optional(Type.Array(Type.Object({ type: Type.String(), number: Type.String() }))),
  phones: Type.Array(Type.String(), { description: 'E.164' }),
  emails: Type.Array(Type.String(), { description: 'normalised' }),
  contactMediums: Type.Array(
    Type.Object({ id: Type.String(), type: Type.String(), mediumId: Type.Optional(Type.String()) }),
  ),
  additionalData: Type.Optional(
    Type.Record(Type.String(), Type.Unknown(), { description: 'only with prospects:readAdditionalData' }),
  ),
  merged: Type.Optional(Type.Boolean()),
  leads: Type.Array(LeadDataSchema),
  agent: Type.Optional(AgentSchema),
  assigned: Type.Optional(DateTimeSchema),
  transferredAt: Type.Union([DateTimeSchema, Type.Null()]),
  absenceMessage: Type.Optional(Type.String()),
  archivingReason: Type.Optional(Type.String()),
  userMade: Type.Boolean(),
  previousProspectId: Type.Optional(ObjectIdSchema),
}

export const ProspectSchema = Type.Object(prospectFields, { $id: 'Prospect', title: 'Prospect' })

export const ProspectCreatedSchema = Type.Object(
  { ...prospectFields, interactions: Type.Array(InteractionSchema) },
  { $id: 'ProspectCreated', title: 'ProspectCreated' },
)

export type ProspectView = Static<typeof ProspectSchema>
export type InteractionView = Static<typeof InteractionSchema>

export const UpdateProspectSchema = Type.Object(
  {
    firstName: Type.Optional(Type.String({ maxLength: 200 })),
    lastName: Type.Optional(Type.String({ maxLength: 200 })),
    phone: Type.Optional(Type.String({ maxLength: 100, description: 'added; runs the merge rules' })),
    email: Type.Optional(Type.String({ maxLength: 320, description: 'added; runs the merge rules' })),
    label: Type.Optional(Type.String({ maxLength: 200 })),
    archivingReason: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { title: 'UpdateProspect', additionalProperties: false },
)

const KeySchema = Type.Object({ type: Type.Enum(['phone', 'email']), value: Type.String() })

export const MergeRecordSchema = Type.Object(
  {
    id: ObjectIdSchema,
    survivorId: ObjectIdSchema,
    mergedProspectIds: Type.Array(ObjectIdSchema, {
      description: 'empty when a lead or update attached to an existing prospect',
    }),
    leadId: Type.Optional(ObjectIdSchema),
    keys: Type.Array(KeySchema, { description: 'the keys that matched' }),
    skippedKeys: Type.Array(KeySchema, {
      description: 'ext: keys not linked because of the 20-phone/20-email cap',
    }),
    at: DateTimeSchema,
  },
  { title: 'MergeRecord' },
)
