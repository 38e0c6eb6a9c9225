/**
 * `POST /v2/leads/retail` (auth, validation, phone parsing, durable commit, 202) against a bare
 * Fastify route answering a constant JSON (bench/bare.ts), same client settings, same run; and
 * against that route doing the same checks without auth or storage (`bare.ts --check`), which
 * shows how much of the gap is the work itself. All servers run in their own processes; the load comes from autocannon in this one. Ventas runs as
 * `ventas api` (no worker beside it), on a fresh SQLite file unless DATABASE_URL names PostgreSQL.
 * Usage: npm run bench -- accept [--seconds 10] [--connections 16]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { createTestDatabase } from '../test/helper.js'
import { generateLeads } from './leads.js'
import { start } from './servers.js'

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '16' } },
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

const bare = await start(['--import', 'tsx', 'bench/bare.ts'], {}, /"port":\d+/)
const barePort = JSON.parse(bare.output).port as number
const checking = await start(['--import', 'tsx', 'bench/bare.ts', '--check'], {}, /"port":\d+/)
const checkingPort = JSON.parse(checking.output).port as number

const dir = mkdtempSync(join(tmpdir(), 'ventas-bench-'))
const pg = process.env.DATABASE_URL?.startsWith('postgres') ? await createTestDatabase() : null
const database = pg?.env ?? { DATABASE_URL: `sqlite:${join(dir, 'ventas.db')}` }
const ventas = await start(
  ['--import', 'tsx', 'src/cli/main.ts', 'api'],
  { ...database, PORT: '0', LOG_LEVEL: 'warn', VENTAS_RATE_LIMIT: '1000000' },
  /API key: +vk_\S+/,
)
const ventasUrl = /running at (http:\/\/\S+)/.exec(ventas.output)?.[1] as string
const key = /API key: +(vk_\S+)/.exec(ventas.output)?.[1] as string

const base = await load(`http://127.0.0.1:${barePort}/v2/leads/retail`, {})
const ceiling = await load(`http://127.0.0.1:${checkingPort}/v2/leads/retail`, {})
const ours = await load(`${ventasUrl}/v2/leads/retail`, { 'x-api-key': key })
const engine = database.DATABASE_URL?.startsWith('postgres') ? 'postgres' : 'sqlite'
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
const ratio = (figure: string, value: number) =>
  console.log(JSON.stringify({ engine, figure, value: Number(value.toFixed(2)), connections, duration }))
ratio('accept / baseline', ours.rps / base.rps)
ratio('checks alone / baseline (the ceiling without storage)', ceiling.rps / base.rps)
bare.child.kill('SIGTERM')
checking.child.kill('SIGTERM')
ventas.child.kill('SIGTERM')
await new Promise((resolve) => setTimeout(resolve, 500))
rmSync(dir, { recursive: true, force: true })
await pg?.drop()
