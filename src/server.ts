import { pino } from 'pino'
import { type App, buildApp } from './app.js'
import { type Config, loadSecretKey } from './config.js'
import { LeadWorker } from './jobs/worker.js'
import { type Bootstrapped, bootstrapIfEmpty } from './services/bootstrap.js'
import { watchOtherCommits } from './store/commits.js'
import { connect, connectReader } from './store/connect.js'
import type { Db } from './store/database.js'
import { migrateToLatest } from './store/migrator.js'
import { VERSION } from './version.js'
import { leaseFor } from './webhooks/lanes.js'
import { WebhookSender } from './webhooks/sender.js'
import { WebhookWorker, type WebhookWorkerOptions } from './webhooks/worker.js'

/** What a signal stops: a started server or worker, and the log that says so. */
type Stoppable = { stop: () => Promise<void>; log: Pick<App['log'], 'info' | 'error'> }
export type Running = Stoppable & { app: App; db: Db; url: string }

/** How long SIGTERM waits for in-flight requests before giving up on them. */
const SHUTDOWN_GRACE_MS = 10_000

function publicUrl(host: string, port: number): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`
}

/** The lines operations.md §2 prints: the URLs always, the secrets only on first run. */
export function banner(url: string, first: Bootstrapped | null, leadRoute: boolean): string {
  const lines = [`Ventas is running at ${url}`, `  API docs:  ${url}/docs`]
  if (!first) return [...lines, `  Console:   ${url}/console`].join('\n')
  const body = `{"utmSource":"web","firstName":"Ana","phones":["+55 51 98765-4321"]}`
  // The spec's first request posts a lead; until a build has the lead routes, offer one it answers.
  const tryLine = leadRoute
    ? `curl -X POST '${url}/v1/lead/retail?api-key=${first.key}' -H 'content-type: application/json' -d '${body}'`
    : `curl '${url}/v1/integration?api-key=${first.key}'`
  return [
    ...lines,
    `  Console:   ${url}/console   (${first.email} / ${first.password})`,
    `  API key:   ${first.key}   (integration "${first.integrationName}", all scopes, group "${first.groupName}")`,
    `  Try:       ${tryLine}`,
  ].join('\n')
}

/** The webhook sender of a process, configured (webhooks.md §3–§5). */
function webhookWorker(
  db: Db,
  config: Config,
  secretKey: Buffer,
  options: Pick<WebhookWorkerOptions, 'log' | 'onAttempt'>,
): { worker: WebhookWorker; stop: () => Promise<void> } {
  const sender = new WebhookSender({
    allowPrivate: config.webhookAllowPrivate,
    timeoutMs: config.webhookTimeoutMs,
    userAgent: `Ventas-Webhooks/${VERSION}`,
  })
  const days = 24 * 3_600_000
  const worker = new WebhookWorker(db, {
    ...options,
    secretKey,
    sender,
    perSubscription: config.webhookConcurrency,
    // A claimed delivery may wait its lane's requests, then take its own, each up to the timeout;
    // the worker lease is the margin. Only a sender that died loses its claim.
    leaseMs: leaseFor(config.webhookTimeoutMs, config.workerLeaseMs),
    retention: {
      deliveredMs: config.webhookRetention.deliveredDays * days,
      failedMs: config.webhookRetention.failedDays * days,
    },
  })
  return {
    worker,
    stop: async () => {
      await worker.stop()
      await sender.close()
    },
  }
}

/** `ventas worker`: lead processing and webhook delivery, until SIGTERM lets the work in hand finish. */
export async function startWorker(config: Config): Promise<Stoppable> {
  const secretKey = loadSecretKey(config)
  const db = connect(config.storage, { sqliteSynchronous: config.sqliteSynchronous })
  await migrateToLatest(db)
  const log = pino({ level: config.logLevel })
  const { worker: webhooks, stop: stopWebhooks } = webhookWorker(db, config, secretKey, { log })
  const worker = new LeadWorker(db, {
    log,
    leaseMs: config.workerLeaseMs,
    onProcessed: () => webhooks.nudge(),
  })
  worker.start()
  webhooks.start()
  // Leads another process committed (`ventas api`; on SQLite any commit) wake both loops at once.
  // Deliveries queued again elsewhere (redeliver, recover) are claimed at the next poll.
  const watch = watchOtherCommits(
    db,
    config.storage,
    () => {
      worker.nudge()
      webhooks.nudge()
    },
    { log },
  )
  log.info({ worker: worker.name, webhooks: webhooks.name }, 'worker started')
  return {
    log,
    stop: async () => {
      await watch.stop()
      await Promise.all([worker.stop(), stopWebhooks()])
      await db.destroy()
    },
  }
}

/**
 * The only place that listens. Migrates, bootstraps an empty database, listens, prints the
 * banner, and on SIGTERM/SIGINT stops taking requests, lets in-flight ones finish (bounded), closes
 * the database and exits 0.
 */
export async function startServer(
  config: Config,
  options: { withWorker: boolean; print?: (text: string) => void } = { withWorker: true },
): Promise<Running> {
  const print = options.print ?? console.log
  const secretKey = loadSecretKey(config)
  const db = connect(config.storage, { sqliteSynchronous: config.sqliteSynchronous })
  await migrateToLatest(db)
  const first = config.bootstrap ? await bootstrapIfEmpty(db, secretKey, config.defaultCountry) : null
  // `ventas api` commits beside other processes' workers, whose transactions it waits for.
  const reader =
    !options.withWorker && config.storage.engine === 'sqlite' ? connectReader(config.storage) : db
  const closeDatabases = async () => {
    try {
      if (reader !== db) await reader.destroy()
    } finally {
      await db.destroy()
    }
  }
  const app = await buildApp({ config, db, reader, secretKey }).catch(async (error) => {
    await closeDatabases()
    throw error
  })
  if (options.withWorker) {
    const { worker: webhooks, stop: stopWebhooks } = webhookWorker(db, config, secretKey, {
      log: app.log,
      onAttempt: (topic, outcome) => app.webhookMetrics.inc({ topic, outcome }),
    })
    const leadWorker = new LeadWorker(db, {
      log: app.log,
      leaseMs: config.workerLeaseMs,
      onProcessed: (result) => {
        app.leadMetrics.processed(result)
        webhooks.nudge()
      },
    })
    app.leadWorker = leadWorker
    app.webhookWorker = webhooks
    leadWorker.start()
    webhooks.start()
    app.addHook('onClose', () => Promise.all([leadWorker.stop(), stopWebhooks()]).then(() => undefined))
  }
  await app.listen({ port: config.port, host: config.host }).catch(async (error) => {
    await app.close()
    await closeDatabases()
    throw error
  })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : config.port
  const url = publicUrl(config.host, port)
  print(banner(url, first, app.hasRoute({ method: 'POST', url: '/v1/lead/retail' })))

  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= (async () => {
      const timer = setTimeout(() => {
        app.log.error('shutdown grace period over; exiting with requests still open')
        process.exit(1)
      }, SHUTDOWN_GRACE_MS)
      timer.unref()
      await app.close()
      await closeDatabases()
      clearTimeout(timer)
    })()
    return stopping
  }
  return { app, db, url, stop, log: app.log }
}

/**
 * Wires SIGTERM and SIGINT to a graceful stop and exit 0, then waits for the start. Wired first:
 * a signal that comes while the process starts, or just after it says it is ready (its banner,
 * "worker started"), waits for the start and then stops it. With no listener yet, Node would end
 * the process at once, in the middle of whatever it was doing. A second signal still does that
 * (the listeners are once), for a start that hangs.
 */
export async function stopOnSignals(starting: Promise<Stoppable>): Promise<void> {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      // A start that fails is reported by the command that awaits it, not here.
      starting.then(
        (running) => {
          running.log.info({ signal }, 'shutting down')
          running.stop().then(
            () => process.exit(0),
            (error) => {
              running.log.error({ err: error }, 'shutdown failed')
              process.exit(1)
            },
          )
        },
        () => undefined,
      )
    })
  }
  await starting
}
