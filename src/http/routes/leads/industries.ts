import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { findGroup } from '../../../store/groups.js'
import { principal } from '../../plugins/auth.js'
import { authErrors } from '../../schemas/common.js'
import { IndustrySchema } from '../../schemas/integration.js'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/industries',
    {
      schema: {
        summary: "Industries enabled for the key's group",
        description: 'Each `name` is the path segment of `POST /lead/{name}` and `POST /v2/leads/{name}`.',
        tags: ['Leads'],
        response: { 200: Type.Array(IndustrySchema), ...authErrors },
      },
    },
    async (request) => {
      const integration = principal(request)
      const group = await findGroup(app.db, integration.accountId, integration.groupId)
      return (group?.industries ?? []).map((name) => ({ name }))
    },
  )
}

export default routes
