import { randomUUID } from 'node:crypto'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyServerOptions, LogController } from 'fastify'
import type { Config } from './config.js'
import auth from './http/plugins/auth.js'
import errors from './http/plugins/errors.js'
import metrics from './http/plugins/metrics.js'
import openapi from './http/plugins/openapi.js'
import rateLimit from './http/plugins/rate-limit.js'
import agentRoutes from './http/routes/agents/index.js'
import groupRoutes from './http/routes/groups/index.js'
import healthRoutes from './http/routes/health.js'
import integrationRoutes from './http/routes/integration/index.js'
import interactionRoutes from './http/routes/interactions/index.js'
import industryRoutes from './http/routes/leads/industries.js'
import leadV1Routes from './http/routes/leads/v1.js'
import leadV2Routes from './http/routes/leads/v2.js'
import notificationRoutes from './http/routes/notifications/index.js'
import prospectRoutes from './http/routes/prospects/index.js'
import { buildSerializer } from './http/serialization.js'
import { validatorCompiler } from './http/validation.js'
import type { LeadWorker } from './jobs/worker.js'
import { Checkers } from './services/checkers.js'
import { LastUsedTracker } from './services/last-used.js'
import { jobsAnnouncer } from './store/commits.js'
import type { Db } from './store/database.js'
import type { WebhookWorker } from './webhooks/worker.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Db
    /** The reads a request makes before it writes: a connection of their own in `ventas api` (`connectReader`). */
    reader: Db
    config: Config
    secretKey: Buffer
    lastUsed: LastUsedTracker
    /** Checks the leads of a batch, on a thread of its own when there is a second core. */
    checkers: Checkers
    /** The in-process worker (ventas serve), nudged when leads commit; null in `ventas api`. */
    leadWorker: LeadWorker | null
    /** The in-process webhook sender (ventas serve), nudged when deliveries are queued again. */
    webhookWorker: WebhookWorker | null
    /** Tells the workers of other processes that jobs were committed (PostgreSQL; see `jobsAnnouncer`). */
    announceJobs: () => void
    /** The clock every time-dependent rule reads (office hours, windows); tests inject their own. */
    now: () => number
  }
}

export type AppOptions = {
  config: Config
  db: Db
  reader?: Db
  secretKey: Buffer
  now?: () => number
  logger?: FastifyServerOptions['logger']
}

/** The API prefixes real clients use (api.md: every route under both). */
export const API_PREFIXES = ['/v1', '/api/v1'] as const
export const V2_PREFIXES = ['/v2', '/api/v2'] as const

const REQUEST_ID = /^[\w.:-]{1,128}$/

/**
 * `?api-key=…` must never reach a log line, however the name is spelled: the query parser decodes
 * `api%2Dkey` to `api-key` and accepts it, so redaction compares decoded names too.
 */
export function redactUrl(url: string): string {
  const start = url.indexOf('?')
  if (start === -1) return url
  const query = url
    .slice(start + 1)
    .split('&')
    .map((pair) => {
      const [name = '', ...value] = pair.split('=')
      return value.length > 0 && decodedName(name) === 'api-key' ? `${name}=[redacted]` : pair
    })
  return `${url.slice(0, start)}?${query.join('&')}`
}

function decodedName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' ')).toLowerCase()
  } catch {
    return name.toLowerCase()
  }
}

const KEY_HEADERS = ['req.headers.authorization', 'req.headers["x-api-token"]', 'req.headers["x-api-key"]']

/** The configured logger, with key headers redacted whatever options the caller passed. */
function loggerOptions(options: AppOptions): FastifyServerOptions['logger'] {
  if (options.logger === false) return false
  const given = typeof options.logger === 'object' ? options.logger : {}
  return { level: options.config.logLevel, ...given, redact: KEY_HEADERS }
}

/**
 * The Fastify app as a plugin tree: infrastructure plugins, then the API scope (auth and rate
 * limit apply only there), then its routes under both prefixes. It does not listen: server.ts does.
 */
export async function buildApp(options: AppOptions) {
  const app = Fastify({
    logger: loggerOptions(options),
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    },
    // One log line per request, written by the onResponse hook below with the key redacted.
    logController: new LogController({ requestIdLogLabel: 'requestId', disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    schemaController: { compilersFactory: { buildSerializer } },
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.setValidatorCompiler(validatorCompiler)

  app.decorate('db', options.db)
  app.decorate('reader', options.reader ?? options.db)
  app.decorate('config', options.config)
  app.decorate('secretKey', options.secretKey)
  app.decorate('now', options.now ?? Date.now)
  app.decorate('lastUsed', new LastUsedTracker(options.db))
  app.decorate('leadWorker', null as LeadWorker | null)
  app.decorate('webhookWorker', null as WebhookWorker | null)
  app.decorate('announceJobs', jobsAnnouncer(options.db, options.config.storage))
  app.decorate(
    'checkers',
    new Checkers({
      onEnd: (error) =>
        app.log.error({ err: error }, 'the checker thread ended: batches are checked on the event loop'),
    }),
  )
  app.addHook('onClose', async () => Promise.all([app.lastUsed.close(), app.checkers.close()]))

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        url: redactUrl(request.url),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    )
  })

  await app.register(errors)
  await app.register(metrics)
  await app.register(openapi)
  await app.register(healthRoutes)

  await app.register(async (api) => {
    await api.register(auth)
    await api.register(rateLimit)
    for (const prefix of API_PREFIXES) {
      await api.register(integrationRoutes, { prefix })
      await api.register(industryRoutes, { prefix })
      await api.register(agentRoutes, { prefix })
      await api.register(groupRoutes, { prefix })
      await api.register(leadV1Routes, { prefix })
      await api.register(prospectRoutes, { prefix })
      await api.register(interactionRoutes, { prefix })
      await api.register(notificationRoutes, { prefix })
    }
    for (const prefix of V2_PREFIXES) await api.register(leadV2Routes, { prefix })
  })

  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
