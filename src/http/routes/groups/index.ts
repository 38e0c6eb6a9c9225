import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { isWithinOfficeHours } from '../../../domain/office-hours.js'
import { findWorkingAgents } from '../../../services/presence.js'
import { responseTime } from '../../../services/response-times.js'
import { findVisibleGroup } from '../../../services/visibility.js'
import { findLineage, findSubtree, type Group } from '../../../store/groups.js'
import { findAgentsInSubtree } from '../../../store/users.js'
import { notFound } from '../../errors.js'
import { principal } from '../../plugins/auth.js'
import { GroupResponseTimeSchema, toAgent, WorkingSchema } from '../../schemas/agent.js'
import { authErrors, ObjectIdSchema } from '../../schemas/common.js'
import { GroupNodeSchema, OnlineAgentsSchema, toGroupNode } from '../../schemas/group.js'

const GroupParams = Type.Object({ groupId: ObjectIdSchema })
const oneGroupErrors = { 400: Type.Ref('Error'), 404: Type.Ref('Error'), ...authErrors }

const routes: FastifyPluginAsyncTypebox = async (app) => {
  async function nodes(groups: Group[]) {
    const lineage = await findLineage(
      app.db,
      groups.map((g) => g.id),
    )
    return groups.map((g) => toGroupNode(g, lineage.get(g.id) ?? { ancestors: [], descendants: [] }))
  }

  async function visibleGroupOr404(
    integrationGroup: Parameters<typeof findVisibleGroup>[1],
    groupId: string,
  ) {
    const group = await findVisibleGroup(app.db, integrationGroup, groupId)
    if (!group) throw notFound('Group')
    return group
  }

  app.get(
    '/groups',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: "The key's group and its descendants",
        tags: ['Groups'],
        response: { 200: Type.Array(GroupNodeSchema), ...authErrors },
      },
    },
    async (request) => nodes(await findSubtree(app.db, principal(request).groupId)),
  )

  app.get(
    '/group/:groupId',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: 'One group',
        tags: ['Groups'],
        params: GroupParams,
        response: { 200: GroupNodeSchema, ...oneGroupErrors },
      },
    },
    async (request) => {
      const group = await visibleGroupOr404(principal(request), request.params.groupId)
      const [node] = await nodes([group])
      return node
    },
  )

  app.get(
    '/group/:groupId/agents/online',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: "Agents of the group's subtree who are online, and whether the group is inside office hours",
        tags: ['Groups'],
        params: GroupParams,
        response: { 200: OnlineAgentsSchema, ...oneGroupErrors },
      },
    },
    async (request) => {
      const group = await visibleGroupOr404(principal(request), request.params.groupId)
      const online = await findAgentsInSubtree(app.db, group.id, { active: true, working: true })
      return {
        officeHours: isWithinOfficeHours(group.officeHours, group.timezone, new Date(app.now())),
        agents: online.map(toAgent),
      }
    },
  )

  app.get(
    '/groups/:groupId/is-working',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: "Whether at least one agent of the group's subtree is working now",
        tags: ['Groups'],
        params: GroupParams,
        response: { 200: WorkingSchema, ...oneGroupErrors },
      },
    },
    async (request) => {
      const group = await visibleGroupOr404(principal(request), request.params.groupId)
      const working = await findWorkingAgents(app.db, group.id, new Date(app.now()))
      return { working: working.length > 0 }
    },
  )

  app.post(
    '/groups/:groupId/response-time',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary:
          'Mean seconds from assignment to first agent interaction in the group’s subtree, last 30 days',
        description:
          '`averageSeconds` is null when no prospect assigned in the window has been answered yet.',
        tags: ['Groups'],
        params: GroupParams,
        response: { 200: GroupResponseTimeSchema, ...oneGroupErrors },
      },
    },
    async (request) => {
      const integration = principal(request)
      const group = await visibleGroupOr404(integration, request.params.groupId)
      return {
        groupId: group.id,
        ...(await responseTime(app.db, integration.accountId, { rootGroupId: group.id }, app.now())),
      }
    },
  )
}

export default routes
