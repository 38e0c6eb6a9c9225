/**
 * Webhook delivery rate (dispatch, sign, POST, record) to a fast local receiver in another
 * process, beside two same-run baselines at the same concurrency (a subscription's share, 64):
 * - bare undici POSTs of bodies of the same size, with no Ventas code;
 * - a bare delivery loop, a plain version of the same job with none of Ventas's delivery code:
 *   rows queued in a table, claimed with a lease three rounds of the share at a time (as the
 *   worker claims), each body signed and POSTed by the bare client, each outcome recorded (its row
 *   updated, an attempt row inserted) in transactions that gather what finished meanwhile,
 *   committed by the worker's own `unflushedTransaction`. It is not a ceiling: its client is
 *   undici's `request()`, and it claims only once its rows run out.
 * Ventas is measured twice: from the queue (the events were dispatched beforehand, untimed), which
 * is what the bare loop does, and then from the outbox (the worker dispatches the events, then
 * sends). Then from the outbox again with a second subscription whose receiver never answers, in
 * turn with parts alone (`--rounds`, three by default): the fast one's rate must hold against its
 * rate alone on either side; the figure is the median over the rounds. Every side first sends
 * untimed (a warm-up; undici's client takes a few thousand requests to reach its pace). Each figure
 * comes with this process's CPU time per delivery (per POST for the client): a sender in one process
 * has 1,000,000 / rate µs of a core for each. Usage:
 *   npm run bench -- deliveries [--leads 10000] [--rounds 3] [--backlog 100000] [--profile DIR]
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench -- deliveries
 * --backlog queues that many deliveries to the dead receiver before each of its parts; --profile
 * writes a CPU profile of each timed Ventas part to DIR (taken in this process, which runs the
 * worker).
 * Leads are stored and processed first (not timed); a timed part ends when every delivery to the
 * fast receiver is recorded as delivered.
 */
import type { ChildProcess } from 'node:child_process'
import { createHmac, randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { sql } from 'kysely'
import { Agent, request } from 'undici'
import { LeadWorker } from '../src/jobs/worker.js'
import { checkLead } from '../src/services/checking.js'
import { updateAccount } from '../src/services/directory.js'
import { storeLeads } from '../src/services/intake.js'
import { subscribe, unsubscribe } from '../src/services/subscriptions.js'
import { type Tx, unflushedTransaction } from '../src/store/database.js'
import type { Lead } from '../src/store/leads.js'
import { dispatchEvents } from '../src/webhooks/dispatcher.js'
import { PER_SUBSCRIPTION } from '../src/webhooks/lanes.js'
import { WebhookSender } from '../src/webhooks/sender.js'
import { WebhookWorker } from '../src/webhooks/worker.js'
import { createTestApp, ENGINE } from '../test/helper.js'
import { generatePeopleLeads } from './leads.js'
import { median } from './paced.js'
import { start } from './servers.js'
import { benchAccount } from './setup.js'

const { values } = parseArgs({
  // 10,000 a part: at 2,000 a timed part lasted half a second, and pairs of runs differed by a third.
  // --backlog: deliveries queued to the dead receiver before its part, never attempted (a receiver
  // that has hung for hours): the fast one's rate must not depend on how many wait there.
  options: {
    leads: { type: 'string', default: '10000' },
    backlog: { type: 'string', default: '0' },
    rounds: { type: 'string', default: '3' },
    profile: { type: 'string' },
  },
  allowPositionals: true,
})
const total = Number(values.leads)
const backlog = Number(values.backlog)
const rounds = Number(values.rounds)
if (!(rounds >= 1)) throw new Error('--rounds must be 1 or more')
/** A subscription's share of open requests: the worker's default, which the baselines use too. */
const CONCURRENCY = PER_SUBSCRIPTION

async function startReceiver(mode: 'answer' | 'hang'): Promise<{ url: string; child: ChildProcess }> {
  const { child, output } = await start(['--import', 'tsx', 'bench/receiver.ts', mode], {}, /"port":\d+/)
  return { url: `http://127.0.0.1:${JSON.parse(output).port}/hooks`, child }
}

const report = (figure: string, value: number, unit: string, extra: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ engine: ENGINE, figure, value: Math.round(value), unit, ...extra }))
const reportRatio = (figure: string, value: number, extra: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ engine: ENGINE, figure, value: Number(value.toFixed(2)), ...extra }))

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
  part: string,
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
  const profiling = values.profile ? await startProfile() : undefined
  const started = performance.now()
  const cpu = process.cpuUsage()
  worker.start()
  await finished
  const seconds = (performance.now() - started) / 1000
  const { user, system } = process.cpuUsage(cpu)
  if (profiling) await profiling(join(values.profile as string, `${part}.cpuprofile`))
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

/** Starts this process's CPU profiler; the function returned stops it and writes the profile. */
async function startProfile(): Promise<(file: string) => Promise<void>> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
  return async (file) => {
    const { profile } = await session.post('Profiler.stop')
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, JSON.stringify(profile))
    session.disconnect()
  }
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

/** Commits unflushed, through the helper the worker's claims and records use. */
const unflushed = <T>(work: (tx: Tx) => Promise<T>) => unflushedTransaction(t.db, work)

/** Baseline: the bare delivery loop (see the top of this file). */
async function bareDeliveries(count: number): Promise<{ rate: number; cpuUs: number }> {
  await sql`drop table if exists bench_attempts`.execute(t.db)
  await sql`drop table if exists bench_queue`.execute(t.db)
  await sql`create table bench_queue (id text primary key, status text not null, locked_until bigint, body text not null)`.execute(
    t.db,
  )
  await sql`create index bench_queue_due on bench_queue (status, locked_until, id)`.execute(t.db)
  await sql`create table bench_attempts (id text primary key, queue_id text not null, sent_at bigint not null, status_code integer)`.execute(
    t.db,
  )
  await t.db.transaction().execute(async (tx) => {
    for (let i = 0; i < count; i++)
      await sql`insert into bench_queue (id, status, body) values (${String(i).padStart(8, '0')}, 'pending', ${sample})`.execute(
        tx,
      )
  })
  const key = randomBytes(32)
  const agent = new Agent()
  const ready: { id: string; body: string }[] = []
  let claimed = 0
  const finished: { id: string; sentAt: number; statusCode: number }[] = []
  let claiming: Promise<void> | undefined
  let recording: Promise<void> | undefined
  const claim = () =>
    (claiming ??= unflushed(async (tx) => {
      const lock = ENGINE === 'postgres' ? sql` for update skip locked` : sql``
      const { rows } = await sql<{
        id: string
        body: string
      }>`update bench_queue set locked_until = ${Date.now() + 60_000}
        where id in (select id from bench_queue where status = 'pending' and locked_until is null order by id limit ${3 * CONCURRENCY}${lock})
        returning id, body`.execute(tx)
      claimed += rows.length
      ready.push(...rows)
    }).finally(() => {
      claiming = undefined
    }))
  const record = async () => {
    await new Promise((resolve) => setImmediate(resolve))
    while (finished.length > 0) {
      const batch = finished.splice(0)
      await unflushed(async (tx) => {
        for (const f of batch) {
          const status = f.statusCode < 300 ? 'delivered' : 'failed'
          await sql`update bench_queue set status = ${status}, locked_until = null where id = ${f.id}`.execute(
            tx,
          )
          await sql`insert into bench_attempts (id, queue_id, sent_at, status_code) values (${`${f.id}.1`}, ${f.id}, ${f.sentAt}, ${f.statusCode})`.execute(
            tx,
          )
        }
      })
    }
    recording = undefined
  }
  const started = performance.now()
  const cpu = process.cpuUsage()
  const lanes = Array.from({ length: CONCURRENCY }, async () => {
    for (;;) {
      let row = ready.shift()
      while (!row) {
        const before = claimed
        await claim()
        row = ready.shift()
        if (!row && claimed === before) return // a claim found nothing left
      }
      const sentAt = Date.now()
      const timestamp = Math.floor(sentAt / 1000)
      const hmac = createHmac('sha256', key).update(`${row.id}.${timestamp}.`).update(row.body)
      const res = await request(fast.url, {
        method: 'POST',
        body: row.body,
        dispatcher: agent,
        headers: {
          'content-type': 'application/json',
          'webhook-id': row.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': `v1,${hmac.digest('base64')}`,
        },
      })
      await res.body.dump()
      finished.push({ id: row.id, sentAt, statusCode: res.statusCode })
      recording ??= record()
    }
  })
  await Promise.all(lanes)
  while (recording) await recording
  const rate = count / ((performance.now() - started) / 1000)
  const { user, system } = process.cpuUsage(cpu)
  await agent.close()
  const { rows } = await sql<{
    n: number
  }>`select count(*) as n from bench_queue where status = 'delivered'`.execute(t.db)
  if (Number(rows[0]?.n) !== count) throw new Error(`bare loop: ${rows[0]?.n} of ${count} delivered`)
  return { rate, cpuUs: (user + system) / count }
}

// Warm-up, untimed: every side first sends some untimed, so no figure pays for compiling its code
// (without it the worker's first timed part read 10-25 % below the second, and the bare client
// takes a few thousand requests to reach its pace: its CPU a POST during the warm-up is reported).
const WARMUP = Math.min(2000, total)
const warmingUp = await barePosts(3000)
const baseline = await barePosts(total)
await bareDeliveries(WARMUP)
const floor = await bareDeliveries(total)
const warm = await subscribeLeads(fast.url)
await deliverAll('warm-up', warm.id, await fillOutbox(WARMUP, 3))
await unsubscribe(t.db, warm, Date.now())
// And beside a receiver that never answers, so the first part beside it compiles nothing either.
await updateAccount(t.db, account.id, { webhookFanOut: true })
const warmDead = await subscribeLeads(dead.url)
const warmBeside = await subscribeLeads(fast.url)
await deliverAll('warm-up-beside-dead', warmBeside.id, await fillOutbox(WARMUP, 7))
await unsubscribe(t.db, warmBeside, Date.now())
await unsubscribe(t.db, warmDead, Date.now())
await updateAccount(t.db, account.id, { webhookFanOut: false })

// One subscription, a fast receiver: from the queue first (the less warmed-up of the two), then
// from the outbox.
const queuedTo = await subscribeLeads(fast.url)
const queued = await fillOutbox(total, 4)
while ((await dispatchEvents(t.db, Date.now(), { limit: 200 })).events > 0) {}
const fromQueue = await deliverAll('from-queue', queuedTo.id, queued)
await unsubscribe(t.db, queuedTo, Date.now())
const alone = await subscribeLeads(fast.url)
const events = await fillOutbox(total, 1)
const { seconds: aloneSeconds, cpuUs } = await deliverAll('alone', alone.id, events)
report('deliveries from the queue (dispatched beforehand)', queued / fromQueue.seconds, 'deliveries/s', {
  cpuUsPerDelivery: Math.round(fromQueue.cpuUs),
})
report(
  'deliveries from the outbox (dispatch included), one fast receiver',
  events / aloneSeconds,
  'deliveries/s',
  {
    deliveries: events,
    cpuUsPerDelivery: Math.round(cpuUs),
  },
)
report('baseline: bare undici POSTs, same concurrency', baseline.rate, 'requests/s', {
  cpuUsPerPost: Math.round(baseline.cpuUs),
  warmingUpCpuUsPerPost: Math.round(warmingUp.cpuUs),
})
report('baseline: bare delivery loop from a queue', floor.rate, 'deliveries/s', {
  cpuUsPerDelivery: Math.round(floor.cpuUs),
})

// Fan-out: the fast receiver again, beside a subscription whose receiver never answers, in turn
// with parts alone: alone, beside, alone, beside, … alone (`--rounds` parts beside). The rate
// drifts from part to part (larger tables each time, a shared host that sometimes stalls for a
// part), so each part beside is compared with the mean of the parts alone on either side of it,
// and the figure is the median of those ratios. So is each part's CPU time a fast delivery.
const fanOut: { ratio: number; cpuRatio: number }[] = []
let aloneBefore = { rate: events / aloneSeconds, cpuUs }
let lastAlone = alone
for (let round = 1; round <= rounds; round++) {
  await unsubscribe(t.db, lastAlone, Date.now())
  await updateAccount(t.db, account.id, { webhookFanOut: true })
  const deadOne = await subscribeLeads(dead.url)
  if (backlog > 0) {
    await fillOutbox(backlog, 100 + round)
    while ((await dispatchEvents(t.db, Date.now(), { limit: 1000 })).events > 0) {}
  }
  const beside = await subscribeLeads(fast.url)
  const besideEvents = await fillOutbox(total, 200 + round)
  const besidePart = await deliverAll(`beside-dead-${round}`, beside.id, besideEvents)
  await unsubscribe(t.db, beside, Date.now())
  await unsubscribe(t.db, deadOne, Date.now())
  await updateAccount(t.db, account.id, { webhookFanOut: false })
  lastAlone = await subscribeLeads(fast.url)
  const afterEvents = await fillOutbox(total, 300 + round)
  const afterPart = await deliverAll(`alone-after-${round}`, lastAlone.id, afterEvents)
  const besideRate = besideEvents / besidePart.seconds
  const aloneAfter = { rate: afterEvents / afterPart.seconds, cpuUs: afterPart.cpuUs }
  fanOut.push({
    ratio: besideRate / ((aloneBefore.rate + aloneAfter.rate) / 2),
    cpuRatio: besidePart.cpuUs / ((aloneBefore.cpuUs + aloneAfter.cpuUs) / 2),
  })
  report('deliveries, fast receiver beside a dead one', besideRate, 'deliveries/s', {
    round,
    backlog,
    cpuUsPerDelivery: Math.round(besidePart.cpuUs),
  })
  report('deliveries from the outbox, one fast receiver, after that', aloneAfter.rate, 'deliveries/s', {
    round,
    cpuUsPerDelivery: Math.round(aloneAfter.cpuUs),
  })
  aloneBefore = aloneAfter
}
await unsubscribe(t.db, lastAlone, Date.now())
const ofRounds = (pick: (f: (typeof fanOut)[number]) => number) => ({
  value: median(fanOut.map(pick)),
  rounds: fanOut.map((f) => Number(pick(f).toFixed(2))),
})
const isolation = ofRounds((f) => f.ratio)
reportRatio(
  'beside a dead receiver / alone (the mean of the parts alone before and after), median of the rounds',
  isolation.value,
  { rounds: isolation.rounds },
)
const cpuBeside = ofRounds((f) => f.cpuRatio)
reportRatio('CPU a fast delivery beside a dead receiver / alone, median of the rounds', cpuBeside.value, {
  rounds: cpuBeside.rounds,
})
reportRatio('from the outbox / bare undici POSTs', events / aloneSeconds / baseline.rate)
reportRatio('from the queue / bare delivery loop', queued / fromQueue.seconds / floor.rate)
fast.child.kill('SIGTERM')
dead.child.kill('SIGTERM')
await t.close()
