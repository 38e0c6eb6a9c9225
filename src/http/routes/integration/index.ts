import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { providerKeyOf } from '../../../domain/scopes.js'
import { findAccount } from '../../../store/accounts.js'
import { findGroup } from '../../../store/groups.js'
import type { Integration } from '../../../store/integrations.js'
import { findUser } from '../../../store/users.js'
import { ApiError } from '../../errors.js'
import { authenticate, keyOf, principal } from '../../plugins/auth.js'
import { toAgent } from '../../schemas/agent.js'
import { authErrors } from '../../schemas/common.js'
import { IntegrationSchema, type IntegrationView } from '../../schemas/integration.js'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  async function view(integration: Integration): Promise<IntegrationView> {
    const [account, group, user] = await Promise.all([
      findAccount(app.db, integration.accountId),
      findGroup(app.db, integration.accountId, integration.groupId),
      integration.actAsUserId ? findUser(app.db, integration.accountId, integration.actAsUserId) : undefined,
    ])
    return {
      id: integration.id,
      name: integration.name,
      providerKey: providerKeyOf(integration.scopes),
      groupId: integration.groupId,
      group: group?.name ?? '',
      ...(user ? { user: toAgent(user) } : {}),
      ...(integration.language ? { language: integration.language } : {}),
      account: account?.name ?? '',
      accountId: integration.accountId,
      scopes: integration.scopes,
    }
  }

  app.get(
    '/checkCredentials',
    {
      config: { auth: 'none' },
      schema: {
        summary: 'Check an API key',
        description: '200 with an empty body when the key exists and is enabled, 401 otherwise.',
        tags: ['Integration'],
        querystring: Type.Object({ 'api-key': Type.Optional(Type.String()) }),
        response: { 200: Type.Any({ description: 'Empty body' }), 401: Type.Ref('Error') },
      },
    },
    async (request, reply) => {
      if (!(await authenticate(app, keyOf(request))))
        throw new ApiError('UNAUTHORIZED', 'A valid API key is required')
      return reply.status(200).send()
    },
  )

  app.get(
    '/integration',
    {
      schema: {
        summary: 'The integration this key belongs to',
        tags: ['Integration'],
        response: { 200: IntegrationSchema, ...authErrors },
      },
    },
    async (request) => view(principal(request)),
  )

  app.get(
    '/integrations',
    {
      schema: {
        summary: 'The active integration, as a list',
        tags: ['Integration'],
        response: { 200: Type.Array(IntegrationSchema), ...authErrors },
      },
    },
    async (request) => [await view(principal(request))],
  )
}

export default routes
