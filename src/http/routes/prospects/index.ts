import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { viewProspect } from '../../../services/prospect-views.js'
import { isInSubtree } from '../../../store/groups.js'
import { resolveSurvivor } from '../../../store/prospects.js'
import { notFound } from '../../errors.js'
import { principal } from '../../plugins/auth.js'
import { authErrors, ObjectIdSchema } from '../../schemas/common.js'
import { ProspectSchema } from '../../schemas/prospect.js'

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/prospect/:prospectId',
    {
      config: { scope: 'prospects:read' },
      schema: {
        summary: 'One prospect; an id merged away answers with its survivor',
        tags: ['Prospects'],
        params: Type.Object({ prospectId: ObjectIdSchema }),
        response: { 200: ProspectSchema, 400: Type.Ref('Error'), 404: Type.Ref('Error'), ...authErrors },
      },
    },
    async (request) => {
      const integration = principal(request)
      const prospect = await resolveSurvivor(app.db, integration.accountId, request.params.prospectId)
      if (!prospect || !(await isInSubtree(app.db, integration.groupId, prospect.groupId)))
        throw notFound('Prospect')
      return viewProspect(app.db, prospect, {
        additionalData: integration.scopes.includes('prospects:readAdditionalData'),
      })
    },
  )
}

export default routes
