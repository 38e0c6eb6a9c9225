import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { isAgentWorking } from '../../../services/presence.js'
import { responseTime } from '../../../services/response-times.js'
import { findVisibleAgent, findVisibleGroup } from '../../../services/visibility.js'
import { findAgentsInSubtree } from '../../../store/users.js'
import { notFound } from '../../errors.js'
import { principal } from '../../plugins/auth.js'
import { AgentResponseTimeSchema, AgentSchema, toAgent, WorkingSchema } from '../../schemas/agent.js'
import { authErrors, BooleanQuerySchema, ObjectIdSchema } from '../../schemas/common.js'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/agents',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: 'Agents of a group and its descendants',
        tags: ['Agents'],
        querystring: Type.Object({
          group: ObjectIdSchema,
          active: Type.Optional(BooleanQuerySchema),
        }),
        response: {
          200: Type.Array(AgentSchema),
          400: Type.Ref('Error'),
          404: Type.Ref('Error'),
          ...authErrors,
        },
      },
    },
    async (request) => {
      const group = await findVisibleGroup(app.db, principal(request), request.query.group)
      if (!group) throw notFound('Group')
      const active = request.query.active === undefined ? undefined : request.query.active === 'true'
      const agents = await findAgentsInSubtree(app.db, group.id, active === undefined ? {} : { active })
      return agents.map(toAgent)
    },
  )

  app.get(
    '/agents/:agentId/is-working',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: "Whether an agent is working: active, online and inside one of its groups' office hours",
        tags: ['Agents'],
        params: Type.Object({ agentId: ObjectIdSchema }),
        response: { 200: WorkingSchema, 400: Type.Ref('Error'), 404: Type.Ref('Error'), ...authErrors },
      },
    },
    async (request) => {
      const agent = await findVisibleAgent(app.db, principal(request), request.params.agentId)
      if (!agent) throw notFound('Agent')
      return { working: await isAgentWorking(app.db, agent, new Date(app.now())) }
    },
  )

  app.post(
    '/agents/:agentId/response-time',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: 'Mean seconds from assignment to the agent’s first interaction, over the last 30 days',
        description:
          '`averageSeconds` is null when no prospect assigned in the window has been answered yet.',
        tags: ['Agents'],
        params: Type.Object({ agentId: ObjectIdSchema }),
        response: {
          200: AgentResponseTimeSchema,
          400: Type.Ref('Error'),
          404: Type.Ref('Error'),
          ...authErrors,
        },
      },
    },
    async (request) => {
      const integration = principal(request)
      const agent = await findVisibleAgent(app.db, integration, request.params.agentId)
      if (!agent) throw notFound('Agent')
      return {
        agentId: agent.id,
        ...(await responseTime(app.db, integration.accountId, { agentId: agent.id }, app.now())),
      }
    },
  )
}

export default routes
