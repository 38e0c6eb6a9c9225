import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import { queueStats } from '../../jobs/queue.js'
import type { AppliedResult } from '../../services/processing.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry
    /** Lead counters the routes and the in-process worker report to. */
    leadMetrics: { accepted: Counter<'industry'>; processed: (result: AppliedResult) => void }
    /** Webhook attempts of the in-process sender, by topic and what the attempt left the delivery as. */
    webhookMetrics: Counter<'topic' | 'outcome'>
  }
}

/**
 * Prometheus metrics at /metrics (operations.md §8). Each app has its own registry, so several
 * apps in one process (the tests) never share counters. Requests are labelled by route pattern,
 * not raw URL, to keep the label set bounded. Queue gauges are read from the database at scrape
 * time, so every API process reports the shared queue, whoever works it.
 */
async function metricsPlugin(app: FastifyInstance) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const duration = new Histogram({
    name: 'ventas_http_request_duration_seconds',
    help: 'HTTP requests by route, method and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  const accepted = new Counter({
    name: 'ventas_leads_accepted_total',
    help: 'Leads committed (new, not duplicates)',
    labelNames: ['industry'],
    registers: [registry],
  })
  const processed = new Counter({
    name: 'ventas_leads_processed_total',
    help: 'Leads applied by this process, by outcome',
    labelNames: ['status', 'merged'],
    registers: [registry],
  })
  const attempts = new Counter({
    name: 'ventas_webhook_attempts_total',
    help: 'Webhook attempts made by this process, by topic and outcome (delivered, retrying, failed)',
    labelNames: ['topic', 'outcome'],
    registers: [registry],
  })
  // Registered in scrape order: the first gauge reads the queue once and sets the other two.
  const dead = new Gauge({
    name: 'ventas_queue_dead',
    help: 'Lead jobs parked after their last attempt',
    registers: [],
  })
  const oldest = new Gauge({
    name: 'ventas_queue_oldest_age_seconds',
    help: 'Age of the oldest runnable lead job',
    registers: [],
  })
  new Gauge({
    name: 'ventas_queue_depth',
    help: 'Lead jobs waiting or running',
    registers: [registry],
    async collect() {
      const stats = await queueStats(app.db)
      this.set(stats.depth)
      dead.set(stats.dead)
      oldest.set(stats.oldestRunAt === null ? 0 : Math.max(0, (app.now() - stats.oldestRunAt) / 1000))
    },
  })
  registry.registerMetric(dead)
  registry.registerMetric(oldest)
  app.decorate('metrics', registry)
  app.decorate('webhookMetrics', attempts)
  app.decorate('leadMetrics', {
    accepted,
    processed: (result: AppliedResult) =>
      processed.inc({
        status: result.status,
        merged: String(result.status === 'processed' && result.merged),
      }),
  })
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unknown'
    duration.observe(
      { method: request.method, route, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    )
  })
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  )
}

export default fp(metricsPlugin, { name: 'metrics' })
