/**
 * `POST /v2/leads/retail` (auth, validation, phone parsing, durable commit, 202) against a bare
 * Fastify route answering a constant JSON (bench/bare.ts), same client settings, same run; and
 * against that route doing part of the work with no Ventas storage (bench/bare.ts): the same
 * checks (`--check`), committing one raw row per request with the engine's driver (`--store`),
 * and both. Those show the most any accept doing that work could reach on this machine. All
 * servers run in their own processes; the load comes from autocannon in this one. Ventas runs as
 * `ventas api` (no worker beside it), on a fresh SQLite file unless DATABASE_URL names PostgreSQL.
 * Usage: npm run bench -- accept [--seconds 10] [--connections 16]
 *   add --profile DIR to run the dist/ build under node --cpu-prof (npm run build first)
 */
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { createTestDatabase } from '../test/helper.js'
import { generateLeads } from './leads.js'
import { startBare, startVentas, stop } from './servers.js'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    profile: { type: 'string' },
  },
  allowPositionals: true,
})
const duration = Number(values.seconds)
const connections = Number(values.connections)

const bodies = generateLeads(5000, 0.3).map((lead) => JSON.stringify(lead))
let next = 0
async function load(url: string, headers: Record<string, string>) {
  const result = await autocannon({
    url,
    method: 'POST',
    connections,
    duration,
    headers: { 'content-type': 'application/json', ...headers },
    requests: [{ setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length] }) }],
  })
  const wrong = result.non2xx + result.errors + result.timeouts
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, wrong }
}

// Each storing baseline writes a table of its own, so both are measured on tables of the same size.
const [rawOnly, rawChecked] = [await createTestDatabase(), await createTestDatabase()]
const bare = await startBare()
const checking = await startBare(['--check'])
const storing = await startBare(['--store'], { RAW_DATABASE_URL: rawOnly.url })
const both = await startBare(['--check', '--store'], { RAW_DATABASE_URL: rawChecked.url })
const ventas = await startVentas('api', values.profile ? { profileDir: values.profile } : {})

const base = await load(bare.url, {})
const ceiling = await load(checking.url, {})
const durable = await load(storing.url, {})
const floor = await load(both.url, {})
const ours = await load(`${ventas.url}/v2/leads/retail`, { 'x-api-key': ventas.key })
const engine = ventas.engine
const report = (figure: string, r: typeof ours) =>
  console.log(
    JSON.stringify({
      engine,
      figure,
      rps: Math.round(r.rps),
      p50ms: r.p50,
      p99ms: r.p99,
      notAccepted: r.wrong,
    }),
  )
report('POST /v2/leads/retail', ours)
report('baseline: bare Fastify route', base)
report('bare route doing the checks, no auth, no storage', ceiling)
report('bare route committing one raw row, no checks, no auth', durable)
report('bare route doing the checks and committing one raw row, no auth', floor)
const ratio = (figure: string, value: number) =>
  console.log(JSON.stringify({ engine, figure, value: Number(value.toFixed(2)), connections, duration }))
ratio('accept / baseline', ours.rps / base.rps)
ratio('checks alone / baseline (the ceiling without storage)', ceiling.rps / base.rps)
ratio('one raw row committed / baseline (the ceiling of a durable accept)', durable.rps / base.rps)
ratio('accept / checks and one raw row committed', ours.rps / floor.rps)
for (const server of [bare, checking, storing, both]) await stop(server.child)
await ventas.stop()
await ventas.drop()
await rawOnly.drop()
await rawChecked.drop()
if ([base, ceiling, durable, floor, ours].some((r) => r.wrong > 0)) {
  console.error('accept: some requests were not accepted')
  process.exit(1)
}
