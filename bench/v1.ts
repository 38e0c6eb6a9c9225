/**
 * `POST /v1/lead/retail` (synchronous: accept, commit, process at once, answer with the prospect)
 * at a fixed rate, against the bare Fastify route (bench/bare.ts) at the same rate, same run.
 * Two load shapes, each on both servers: autocannon's `overallRate` (each connection sends its
 * share of a second back to back, then idles until the next second), and a steady open-loop pace
 * (bench/paced.ts: one request every 1/rate s whatever the answers). Ventas runs as `ventas serve`
 * (or `ventas api`) on a fresh database; each server gets a warm-up at the rate first, untimed.
 * Usage:
 *   npm run bench -- v1 [--rate 500] [--seconds 10] [--warmup 2] [--connections 16] [--command serve|api]
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench -- v1
 *   add --profile DIR to run the dist/ build under node --cpu-prof (npm run build first)
 */
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { generateLeads } from './leads.js'
import { percentiles, sendPaced } from './paced.js'
import { startBare, startVentas, stop, type Ventas } from './servers.js'

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '16' },
    command: { type: 'string', default: 'serve' },
    profile: { type: 'string' },
  },
  allowPositionals: true,
})
const rate = Number(values.rate)
const measured = Math.round(rate * Number(values.seconds))
const warmup = Math.round(rate * Number(values.warmup))
const connections = Number(values.connections)
const command = values.command as 'serve' | 'api'
if (command !== 'serve' && command !== 'api') throw new Error('--command is serve or api')

const bodies = generateLeads(5000, 0.3).map((lead) => JSON.stringify(lead))
let next = 0
const nextBody = () => bodies[next++ % bodies.length] as string
/** A v1 answer is a prospect: an object with its 24-hex id (the bare route answers a receipt, which has one too). */
const hasId = (body: string) => /^[0-9a-f]{24}$/.test((JSON.parse(body) as { id?: string }).id ?? '')

/** autocannon at `overallRate`, `amount` requests; latencies as measured (its omission correction assumes 1 ms intervals). */
async function cannon(url: string, headers: Record<string, string>, amount: number) {
  let withId = 0
  // autocannon's own duration ends at its next 1-second sample after the last answer: too coarse here.
  let finished = 0
  const started = performance.now()
  const result = await autocannon({
    url,
    method: 'POST',
    connections,
    amount,
    overallRate: rate,
    ignoreCoordinatedOmission: true,
    headers: { 'content-type': 'application/json', ...headers },
    requests: [
      {
        setupRequest: (request) => ({ ...request, body: nextBody() }),
        onResponse: (status, body) => {
          finished = performance.now()
          if (status < 300 && hasId(body)) withId += 1
        },
      },
    ],
  })
  return {
    rate: Math.round(amount / ((finished - started) / 1000)),
    p50ms: result.latency.p50,
    p99ms: result.latency.p99,
    maxms: result.latency.max,
    notOk: result.non2xx + result.errors + result.timeouts + (amount - withId),
  }
}

async function paced(url: string, headers: Record<string, string>, count: number) {
  const run = await sendPaced(url, { rate, count, headers, body: () => nextBody() })
  return {
    rate: Math.round(run.rate),
    ...percentiles(run.answers.map((a) => a.ms)),
    notOk: run.answers.filter((a) => a.status >= 300 || a.status < 200 || !hasId(a.body)).length,
  }
}

const bare = await startBare()
let ventas: Ventas | undefined
let failed = false
try {
  ventas = await startVentas(command, values.profile ? { profileDir: values.profile } : {})
  const v1 = `${ventas.url}/v1/lead/retail`
  const auth = { 'x-api-key': ventas.key }
  await cannon(bare.url, {}, warmup)
  const bareCannon = await cannon(bare.url, {}, measured)
  const barePaced = await paced(bare.url, {}, measured)
  const warm = await cannon(v1, auth, warmup)
  const oursCannon = await cannon(v1, auth, measured)
  const oursPaced = await paced(v1, auth, measured)
  await ventas.stop()
  const sent = warmup + 2 * measured
  const stored = await ventas.count()
  const processed = await ventas.count('processed')
  const engine = ventas.engine
  const report = (figure: string, r: typeof oursPaced) =>
    console.log(JSON.stringify({ engine, figure, ...r }))
  report(`POST /v1/lead/retail (${command}), autocannon overallRate ${rate}/s`, oursCannon)
  report('baseline: bare Fastify route, autocannon overallRate, same rate', bareCannon)
  report(`POST /v1/lead/retail (${command}), paced ${rate}/s`, oursPaced)
  report('baseline: bare Fastify route, paced, same rate', barePaced)
  console.log(JSON.stringify({ engine, figure: 'check', sent, stored, processed, connections }))
  failed = warm.notOk + oursCannon.notOk + oursPaced.notOk > 0 || stored !== sent || processed !== sent
  if (failed) console.error('v1: not every lead was answered with its prospect, stored and processed')
} finally {
  await ventas?.stop()
  await stop(bare.child)
  await ventas?.drop()
}
if (failed) process.exit(1)
