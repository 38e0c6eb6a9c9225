/**
 * End-to-end latency of an asynchronous lead: from sending `POST /v2/leads/retail` to the arrival
 * of its `leads` webhook at a local receiver (bench/lead-receiver.ts, its own process), with leads
 * sent at a steady rate (bench/paced.ts). Ventas runs as `ventas serve` (API, lead worker and
 * webhook sender in one process) or as `ventas api` beside a `ventas worker`, on a fresh database,
 * and the receiver is subscribed through the API. Baseline, same run, same sender, same rate:
 * the answer latency of the bare Fastify route (bench/bare.ts); the v2 answer latency is reported
 * beside it. A warm-up at the same rate comes first, and its webhooks are awaited, untimed. Then
 * the same leads' way is split into stages, from the times Ventas stored (see `stages`).
 * Usage:
 *   npm run bench -- latency [--rate 1000] [--seconds 10] [--warmup 2] [--command serve|api+worker]
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench -- latency --command api+worker
 *   add --profile DIR to run the dist/ build under node --cpu-prof (npm run build first)
 */
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { generateLeads } from './leads.js'
import { type Answer, epochNow, percentiles, sendPaced } from './paced.js'
import { start, startBare, startVentas, stop, type Timeline, type Ventas } from './servers.js'

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    command: { type: 'string', default: 'serve' },
    patience: { type: 'string', default: '60' },
    profile: { type: 'string' },
  },
  allowPositionals: true,
})
const rate = Number(values.rate)
const measured = Math.round(rate * Number(values.seconds))
const warmup = Math.round(rate * Number(values.warmup))
const command = values.command as 'serve' | 'api+worker'
if (command !== 'serve' && command !== 'api+worker') throw new Error('--command is serve or api+worker')

/** The receiver, and every first arrival of a lead's webhook by lead id. */
async function startReceiver() {
  const { child, output } = await start(['--import', 'tsx', 'bench/lead-receiver.ts'], {}, /"port":\d+/)
  const arrivals = new Map<string, { at: number; type: string }>()
  let duplicates = 0
  let lastArrival = epochNow()
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const { lead, type, at } = JSON.parse(line) as { lead?: string; type: string; at: number }
    if (!lead) return // the port line
    if (arrivals.has(lead)) duplicates += 1
    else arrivals.set(lead, { at, type })
    lastArrival = epochNow()
  })
  return {
    url: `http://127.0.0.1:${JSON.parse(output).port}/hooks`,
    child,
    arrivals,
    duplicates: () => duplicates,
    /** Resolves once every lead in `ids` has arrived, or nothing arrived for `patience` seconds. */
    async await(ids: string[]) {
      while (ids.some((id) => !arrivals.has(id)) && epochNow() - lastArrival < Number(values.patience) * 1000)
        await new Promise((resolve) => setTimeout(resolve, 100))
    },
  }
}

const idOf = (answer: Answer) => (JSON.parse(answer.body) as { id: string }).id
const leadIds = (answers: Answer[]) => answers.flatMap((a) => (a.status === 202 ? [idOf(a)] : []))

/**
 * Where each lead's time went, from the times Ventas stored (each process's `Date.now()`, whole
 * milliseconds, against the sender's and the receiver's fractional clocks: a stage of a
 * millisecond or less can read slightly negative):
 * - toApi: sent → the lead's `receivedAt`, which the API takes once it has parsed the body and read
 *   the key, the group and the blocked values (mostly the API's event loop queue under load);
 * - answered: `receivedAt` → the answer back at the sender (the group's commit, its wait for the
 *   write lock, the way back);
 * - applied: `receivedAt` → the time of the worker's batch that applied it, taken once the batch
 *   has read what it needs (the commit, the worker's wake, its claim and reads);
 * - dispatched: → the start of the dispatch that took its event (the batch's decisions, writes and
 *   commit, and the wait for the dispatcher);
 * - sent: → the webhook's first attempt (the dispatch's rendering, writes and commit, and the wait
 *   for a lane);
 * - arrived: the first attempt → its arrival at the receiver.
 */
function stages(answers: Answer[], timelines: Map<string, Timeline>, arrivals: Map<string, { at: number }>) {
  const names = ['toApi', 'answered', 'applied', 'dispatched', 'sent', 'arrived'] as const
  const spans = new Map(names.map((name) => [name, [] as number[]]))
  const add = (name: (typeof names)[number], ms: number) => spans.get(name)?.push(ms)
  for (const answer of answers) {
    if (answer.status !== 202) continue
    const id = idOf(answer)
    const t = timelines.get(id)
    const arrival = arrivals.get(id)
    if (!t || !arrival) continue
    add('toApi', t.receivedAt - answer.sentAt)
    add('answered', answer.sentAt + answer.ms - t.receivedAt)
    add('applied', t.processedAt - t.receivedAt)
    add('dispatched', t.dispatchedAt - t.processedAt)
    add('sent', t.sentAt - t.dispatchedAt)
    add('arrived', arrival.at - t.sentAt)
  }
  const figures = [...spans].map(([name, ms]) => {
    const { p50ms, p99ms, maxms } = percentiles(ms)
    return [name, [p50ms, p99ms, maxms]]
  })
  return { leads: spans.get('toApi')?.length, ...Object.fromEntries(figures) }
}

const bodies = generateLeads(warmup + measured, 0.3).map((lead) => JSON.stringify(lead))
const receiver = await startReceiver()
const bare = await startBare()
let ventas: Ventas | undefined
let failed = false
try {
  ventas = await startVentas(command, {
    env: { VENTAS_WEBHOOK_ALLOW_PRIVATE: 'true' },
    ...(values.profile ? { profileDir: values.profile } : {}),
  })
  const subscribed = await fetch(`${ventas.url}/v1/notifications/subscriptions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': ventas.key },
    body: JSON.stringify({ topics: ['leads'], callbackUrl: receiver.url }),
  })
  if (subscribed.status !== 201) throw new Error(`subscribe: ${subscribed.status} ${await subscribed.text()}`)

  const base = await sendPaced(bare.url, { rate, count: measured, body: (i) => bodies[i] as string })
  const { url, key } = ventas
  const send = (offset: number, count: number) =>
    sendPaced(`${url}/v2/leads/retail`, {
      rate,
      count,
      headers: { 'x-api-key': key },
      body: (i) => bodies[offset + i] as string,
    })
  const warm = await send(0, warmup)
  await receiver.await(leadIds(warm.answers))
  const run = await send(warmup, measured)
  const ids = leadIds(run.answers)
  await receiver.await(ids)

  const endToEnd = run.answers.flatMap((answer) => {
    const arrived = answer.status === 202 ? receiver.arrivals.get(idOf(answer)) : undefined
    return arrived ? [arrived.at - answer.sentAt] : []
  })
  const received = ids.filter((id) => receiver.arrivals.has(id)).length
  // What the pipeline sustained: leads from the first send to the last webhook's arrival.
  const lastArrival = Math.max(...ids.map((id) => receiver.arrivals.get(id)?.at ?? 0))
  const throughput = received / ((lastArrival - (run.answers[0]?.sentAt ?? 0)) / 1000)
  const rejected = ids.filter((id) => (receiver.arrivals.get(id)?.type ?? 'processed') !== 'processed').length
  const notAccepted = [...warm.answers, ...run.answers].filter((a) => a.status !== 202).length
  await ventas.stop()
  const stored = await ventas.count()
  const processed = await ventas.count('processed')
  const timelines = await ventas.timelines()
  const engine = ventas.engine
  console.log(
    JSON.stringify({
      engine,
      figure: `POST /v2/leads/retail → leads webhook (${command})`,
      leads: measured,
      rate: Math.round(run.rate),
      ...percentiles(endToEnd),
      throughput: Math.round(throughput),
      received,
      rejected,
      duplicates: receiver.duplicates(),
    }),
  )
  console.log(
    JSON.stringify({
      engine,
      figure: 'POST /v2/leads/retail answer, same requests',
      ...percentiles(run.answers.map((a) => a.ms)),
      notAccepted,
    }),
  )
  console.log(
    JSON.stringify({
      engine,
      figure: 'baseline: bare Fastify route answer, same rate',
      rate: Math.round(base.rate),
      ...percentiles(base.answers.map((a) => a.ms)),
      notAccepted: base.answers.filter((a) => a.status !== 202).length,
    }),
  )
  console.log(
    JSON.stringify({
      engine,
      figure: 'stages of the same leads (p50 / p99 / max)',
      ...stages(run.answers, timelines, receiver.arrivals),
    }),
  )
  console.log(JSON.stringify({ engine, figure: 'check', sent: warmup + measured, stored, processed }))
  failed = notAccepted > 0 || received !== measured || stored !== warmup + measured || processed !== stored
  if (failed) console.error('latency: not every lead was accepted, stored, processed and delivered')
} finally {
  await ventas?.stop()
  await stop(bare.child)
  await stop(receiver.child)
  await ventas?.drop()
}
if (failed) process.exit(1)
