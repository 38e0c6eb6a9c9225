import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { hashApiKey } from '../../domain/api-key.js'
import type { Scope } from '../../domain/scopes.js'
import { findIntegrationByKeyHash, type Integration } from '../../store/integrations.js'
import { ApiError } from '../errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a route needs; absent means any valid key will do. */
    scope?: Scope
    /** `none` for the few routes that authenticate themselves (checkCredentials). */
    auth?: 'none'
  }
  interface FastifyRequest {
    integration: Integration | null
  }
}

/**
 * Where api.md §1.1 lets clients send the key, in its order of precedence: the `api-key` query
 * parameter, `X-API-Token`, `x-api-key`, `Authorization: Bearer`.
 */
export function keyOf(request: FastifyRequest): string | undefined {
  const fromQuery = (request.query as Record<string, unknown> | undefined)?.['api-key']
  // A query key wins even when malformed (repeated, empty): it must fail, not fall through to a header.
  if (fromQuery !== undefined) return typeof fromQuery === 'string' ? fromQuery : ''
  const token = request.headers['x-api-token']
  if (typeof token === 'string' && token) return token
  const apiKey = request.headers['x-api-key']
  if (typeof apiKey === 'string' && apiKey) return apiKey
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')
  return bearer?.[1]
}

/** The enabled integration a key belongs to, or undefined (missing, unknown or revoked alike). */
export async function authenticate(
  app: FastifyInstance,
  key: string | undefined,
): Promise<Integration | undefined> {
  if (!key) return undefined
  const integration = await findIntegrationByKeyHash(app.reader, hashApiKey(key))
  if (!integration || integration.revokedAt !== null) return undefined
  app.lastUsed.record(integration.id, integration.lastUsedAt, app.now())
  return integration
}

/** The integration of an authenticated request; only routes that skip auth may lack one. */
export function principal(request: FastifyRequest): Integration {
  if (!request.integration) throw new Error(`route ${request.url} reached a handler without an integration`)
  return request.integration
}

/**
 * Every route in the scope this plugin is registered in needs a valid key unless its config says
 * `auth: 'none'`; a route with `config.scope` also needs that scope. 401 and 403 are decided here,
 * before validation and the rate limit, so a refused caller learns nothing about the route.
 */
async function authPlugin(app: FastifyInstance) {
  app.decorateRequest('integration', null)
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config
    if (config.auth === 'none' || request.is404) return
    const integration = await authenticate(app, keyOf(request))
    if (!integration) throw new ApiError('UNAUTHORIZED', 'A valid API key is required')
    if (config.scope && !integration.scopes.includes(config.scope)) {
      throw new ApiError('INVALID_SCOPE', `Invalid scope: this operation needs ${config.scope}`)
    }
    request.integration = integration
  })
}

export default fp(authPlugin, { name: 'auth' })
