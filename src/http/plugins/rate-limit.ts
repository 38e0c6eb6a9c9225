import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ApiError } from '../errors.js'

/**
 * Per-integration rate limit (operations.md §5) with @fastify/rate-limit's fixed window.
 * "100 req/s, burst 200" is a window of burst/rate = 2 s that admits 200 requests: the average
 * stays at the rate and a client may spend a whole window's allowance at once. An integration's
 * own `rateLimit` (req/s) scales the allowance over the same window. With REDIS_URL the counters
 * live in Redis, so every API process shares them; if Redis is unreachable requests are let
 * through (skipOnError) rather than refused, and the outage is logged.
 * Registered after auth, so it keys on the integration and never counts refused keys.
 */
async function rateLimitPlugin(app: FastifyInstance) {
  const { perSecond, burst } = app.config.rateLimit
  const windowMs = Math.round((burst / perSecond) * 1000)
  // No offline queue: while Redis is down a request fails over at once instead of waiting.
  // So connect before serving, or the first requests would pass uncounted. The client is loaded
  // only when configured: without REDIS_URL it would add ~50 ms to every start for nothing.
  const redis = app.config.redisUrl
    ? new (await import('ioredis')).Redis(app.config.redisUrl, {
        connectTimeout: 1000,
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        lazyConnect: true,
      })
    : undefined
  if (redis) {
    redis.on('error', (error) => app.log.warn({ err: error }, 'rate limit store (Redis) unavailable'))
    await redis
      .connect()
      .catch((error) => app.log.warn({ err: error }, 'Redis unreachable at start; rate limits fail open'))
    app.addHook('onClose', async () => void redis.disconnect())
  }

  await app.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    timeWindow: windowMs,
    max: (request) => {
      const own = request.integration?.rateLimit
      return own ? Math.max(1, Math.round((own * windowMs) / 1000)) : burst
    },
    keyGenerator: (request) => `integration:${request.integration?.id}`,
    allowList: (request) => request.integration === null,
    ...(redis ? { redis, nameSpace: 'ventas-rate-limit:' } : {}),
    skipOnError: true,
    enableDraftSpec: true,
    errorResponseBuilder: (_request, context) =>
      new ApiError(
        'RATE_LIMITED',
        `Rate limit exceeded: ${context.max} requests per ${windowMs / 1000} s; retry in ${context.after}`,
      ),
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit', dependencies: ['auth'] })
