/**
 * Webhook delivery rate (dispatch, sign, POST, record) to a fast local receiver in another
 * process, beside a same-run baseline: the same number of POSTs of the same bodies from a bare
 * undici client at the same concurrency (8, a subscription's share), with no Ventas code. Then
 * the same with a second subscription whose receiver never answers: the fast one's rate must
 * hold. Both the client and the worker first send 500 untimed (a warm-up). Each figure comes with
 * this process's CPU time per delivery (per POST for the client): a sender in one process has
 * 1,000,000 / rate µs of a core for each. Usage:
 *   npm run bench -- deliveries [--leads 2000]
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench -- deliveries
 * Leads are stored and processed first (not timed); the timed part starts with the events in
 * the outbox and ends when every delivery to the fast receiver is recorded as delivered.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { Agent, request } from 'undici'
import { LeadWorker } from '../src/jobs/worker.js'
import { updateAccount } from '../src/services/directory.js'
import { checkLead, storeLeads } from '../src/services/intake.js'
import { subscribe, unsubscribe } from '../src/services/subscriptions.js'
import type { Lead } from '../src/store/leads.js'
import { WebhookSender } from '../src/webhooks/sender.js'
import { WebhookWorker } from '../src/webhooks/worker.js'
import { createTestApp, ENGINE } from '../test/helper.js'
import { generatePeopleLeads } from './leads.js'
import { benchAccount } from './setup.js'

const { values } = parseArgs({
  options: { leads: { type: 'string', default: '2000' } },
  allowPositionals: true,
})
const total = Number(values.leads)
const CONCURRENCY = 8

async function startReceiver(mode: 'answer' | 'hang'): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/receiver.ts', mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const [line] = (await once(child.stdout as NodeJS.ReadableStream, 'data')) as [Buffer]
  return { url: `http://127.0.0.1:${JSON.parse(line.toString()).port}/hooks`, child }
}

const report = (figure: string, value: number, unit: string, extra: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ engine: ENGINE, figure, value: Math.round(value), unit, ...extra }))

const fast = await startReceiver('answer')
const dead = await startReceiver('hang')

const t = await createTestApp({ now: Date.now(), env: { VENTAS_WEBHOOK_ALLOW_PRIVATE: 'true' } })
const { account, group, integration } = await benchAccount(t)

/** A subscription of the bench key to the `leads` topic at `url`. */
const subscribeLeads = (url: string) =>
  subscribe(t.db, integration, { topics: ['leads'], callbackUrl: url }, t.secretKey, Date.now())

/** Stores and processes `count` leads (not timed): their `leads` events wait in the outbox. */
async function fillOutbox(count: number, seed: number) {
  const { leads: inputs } = generatePeopleLeads(count, 0.3, seed)
  const leads = inputs.flatMap((input) => {
    const c = checkLead(input, { integration, group, industry: 'retail', blocked: new Set(), at: Date.now() })
    return c.ok ? [c.lead] : []
  })
  for (let i = 0; i < leads.length; i += 1000)
    await storeLeads(t.db, leads.slice(i, i + 1000) as Lead[], { at: Date.now() })
  const worker = new LeadWorker(t.db, { batch: 200 })
  while ((await worker.runOnce()) > 0) {}
  return leads.length
}

/**
 * Runs a webhook worker until `expected` deliveries of `subscriptionId` are delivered; returns the
 * seconds and this process's CPU time per delivery (µs, every thread: the worker is all it runs then).
 */
async function deliverAll(
  subscriptionId: string,
  expected: number,
): Promise<{ seconds: number; cpuUs: number }> {
  const sender = new WebhookSender({ allowPrivate: true, userAgent: 'Ventas-Webhooks/bench' })
  // Counted as the worker records them (the dead receiver's attempts never end while timed), so
  // the timed part runs no queries of its own; the database is checked once it is over.
  let recorded = 0
  let done: () => void = () => {}
  const finished = new Promise<void>((resolve) => {
    done = resolve
  })
  const worker = new WebhookWorker(t.db, {
    secretKey: t.secretKey,
    sender,
    leaseMs: 60_000,
    onAttempt: (_topic, outcome) => {
      if (outcome === 'delivered' && ++recorded === expected) done()
    },
  })
  const started = performance.now()
  const cpu = process.cpuUsage()
  worker.start()
  await finished
  const seconds = (performance.now() - started) / 1000
  const { user, system } = process.cpuUsage(cpu)
  await worker.stop(0)
  await sender.close()
  const row = await t.db
    .selectFrom('deliveries')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('subscriptionId', '=', subscriptionId)
    .where('status', '=', 'delivered')
    .executeTakeFirstOrThrow()
  if (Number(row.n) !== expected) throw new Error(`${row.n} of ${expected} deliveries are delivered`)
  return { seconds, cpuUs: (user + system) / expected }
}

// Baseline: the bare client, same receiver, same concurrency, bodies of the same size.
const sample = JSON.stringify({ topic: 'leads', type: 'processed', padding: 'x'.repeat(1200) })
async function barePosts(count: number): Promise<{ rate: number; cpuUs: number }> {
  const agent = new Agent()
  let next = 0
  const started = performance.now()
  const cpu = process.cpuUsage()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < count) {
        const res = await request(fast.url, { method: 'POST', body: sample, dispatcher: agent })
        await res.body.dump()
      }
    }),
  )
  const rate = count / ((performance.now() - started) / 1000)
  const { user, system } = process.cpuUsage(cpu)
  await agent.close()
  return { rate, cpuUs: (user + system) / count }
}

// Warm-up, untimed: the bare client and the worker each send WARMUP first, so neither figure pays
// for compiling its code (without it the first timed part read 10-25 % below the second).
const WARMUP = Math.min(500, total)
await barePosts(WARMUP)
const baseline = await barePosts(total)
const warm = await subscribeLeads(fast.url)
await deliverAll(warm.id, await fillOutbox(WARMUP, 3))
await unsubscribe(t.db, warm, Date.now())

// One subscription, a fast receiver.
const alone = await subscribeLeads(fast.url)
const events = await fillOutbox(total, 1)
const { seconds: aloneSeconds, cpuUs } = await deliverAll(alone.id, events)
report('deliveries, one fast receiver', events / aloneSeconds, 'deliveries/s', {
  deliveries: events,
  cpuUsPerDelivery: Math.round(cpuUs),
})
report('baseline: bare undici POSTs, same concurrency', baseline.rate, 'requests/s', {
  cpuUsPerPost: Math.round(baseline.cpuUs),
})

// Fan-out: the fast receiver again, beside a subscription whose receiver never answers.
await unsubscribe(t.db, alone, Date.now())
await updateAccount(t.db, account.id, { webhookFanOut: true })
const beside = await subscribeLeads(fast.url)
await subscribeLeads(dead.url)
const moreEvents = await fillOutbox(total, 2)
const { seconds: besideSeconds } = await deliverAll(beside.id, moreEvents)
report('deliveries, fast receiver beside a dead one', moreEvents / besideSeconds, 'deliveries/s')
console.log(
  JSON.stringify({
    engine: ENGINE,
    figure: 'beside a dead receiver / alone',
    value: Number((moreEvents / besideSeconds / (events / aloneSeconds)).toFixed(2)),
  }),
)
console.log(
  JSON.stringify({
    engine: ENGINE,
    figure: 'one fast receiver / baseline',
    value: Number((events / aloneSeconds / baseline.rate).toFixed(2)),
  }),
)
fast.child.kill('SIGTERM')
dead.child.kill('SIGTERM')
await t.close()
