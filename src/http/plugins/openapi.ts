import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { SCOPES } from '../../domain/scopes.js'
import { VERSION } from '../../version.js'
import { ErrorSchema } from '../schemas/common.js'

const KEY_SCHEMES = ['apiKeyQuery', 'apiToken', 'xApiKey', 'bearer'] as const

const DESCRIPTION = `Ventas is wire-compatible with the Sales API of Zenvia Customer Cloud (formerly Sirena).

Every route below is served under both \`/v1\` and \`/api/v1\` (only \`/v1\` is listed). Send the API key
as the \`api-key\` query parameter, or the \`X-API-Token\`, \`x-api-key\` or \`Authorization: Bearer\` header.
Each operation names the scope it needs. Errors share one body: \`{code, message, requestId, details?}\`.
Fields marked *ext* are Ventas extensions.`

/**
 * OpenAPI 3.1 generated from the route schemas (one schema, many uses), and the Swagger UI at
 * /docs served from the package's own files: no CDN, so it works offline.
 */
async function openapiPlugin(app: FastifyInstance) {
  app.addSchema(ErrorSchema)
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Ventas Sales API', version: VERSION, description: DESCRIPTION },
      components: {
        securitySchemes: {
          apiKeyQuery: { type: 'apiKey', in: 'query', name: 'api-key' },
          apiToken: { type: 'apiKey', in: 'header', name: 'X-API-Token' },
          xApiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
          bearer: { type: 'http', scheme: 'bearer' },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (json.$id as string) ?? `def-${i}` },
    transform: ({ schema, url, route }) => {
      const hidden =
        !url.startsWith('/v1/') && !url.startsWith('/v2/') && !['/health', '/ready'].includes(url)
      if (hidden || !schema) return { schema: { ...schema, hide: true }, url }
      const config = (route.config ?? {}) as { scope?: keyof typeof SCOPES; auth?: string }
      if (config.auth === 'none' || !url.startsWith('/v')) return { schema, url }
      const needs = config.scope
        ? `**Scope:** \`${config.scope}\` (${SCOPES[config.scope]}).`
        : '**Scope:** any valid key.'
      return {
        url,
        schema: {
          ...schema,
          description: [needs, schema.description].filter(Boolean).join('\n\n'),
          security: KEY_SCHEMES.map((name) => ({ [name]: [] })),
          'x-scope': config.scope ?? null,
        },
      }
    },
  })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { deepLinking: true },
    validatorUrl: false,
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}

export default fp(openapiPlugin, { name: 'openapi' })
