/**
 * Start time and memory at scale (issue 6, target 9: on a database of 1,000,000 prospects, start
 * to ready under 1.5 s and RSS under 350 MB while leads arrive one by one and in batches).
 * Usage: npm run bench -- startup [--prospects 1000000] [--starts 5] [--seconds 10] [--connections 16] [--batch 100]
 * Ventas runs as users run it, `node dist/main.js serve` (API, worker and webhook sender in
 * one process), so this benchmark builds dist/ first (`npm run build`); tsx would add its own
 * compile time to every start. The database (SQLite unless DATABASE_URL names PostgreSQL) is
 * filled by bench/population.ts.
 * - Start: spawn to the "Ventas is running at" line, --starts rounds after one untimed round,
 *   median; beside a bare Fastify process (the route of bench/bare.ts in plain JavaScript, also
 *   `node`) spawned to its first line, and Ventas on a database with no prospects.
 * - Memory: the server's VmRSS (/proc/<pid>/status) sampled every 100 ms while autocannon sends
 *   POST /v2/leads/retail, then POST /v2/leads/retail/batch (--batch leads each), for --seconds
 *   each; the peak, and VmHWM at the end. Beside the bare process under the same load.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { ALL_SCOPES } from '../src/domain/scopes.js'
import { createIntegration } from '../src/services/access.js'
import { createTestApp, ENGINE, type TestDatabase } from '../test/helper.js'
import { generateLeads } from './leads.js'
import { median } from './paced.js'
import { populateProspects } from './population.js'
import { stop } from './servers.js'
import { benchAccount } from './setup.js'

const { values } = parseArgs({
  options: {
    prospects: { type: 'string', default: '1000000' },
    starts: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    batch: { type: 'string', default: '100' },
  },
  allowPositionals: true,
})
const count = Number(values.prospects)
const starts = Number(values.starts)
const duration = Number(values.seconds)
const connections = Number(values.connections)
const batch = Number(values.batch)

/** bench/bare.ts as plain JavaScript, so both sides of the comparison start under bare `node`. */
const BARE = `import Fastify from 'fastify'
const app = Fastify({ logger: false, bodyLimit: 10 * 1024 * 1024 })
const answer = { id: '6745a1f0c2b4e5d6a7b8c9d0', status: 'queued' }
app.post('/v2/leads/retail', async (_request, reply) => reply.status(202).send(answer))
await app.listen({ port: 0, host: '127.0.0.1' })
console.log(JSON.stringify({ url: 'http://127.0.0.1:' + app.server.address().port }))
process.on('SIGTERM', () => app.close().then(() => process.exit(0)))`

type Started = { child: ChildProcess; url: string; ms: number }

/** Spawns `node args` and resolves when its output shows a URL, with the time that took. */
function start(args: string[], env: Record<string, string>): Promise<Started> {
  const started = performance.now()
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    let output = ''
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${output}`)))
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const url = /running at (http:\/\/\S+)|"url":"(http:\/\/[^"]+)"/.exec(output)
      if (url) resolve({ child, url: (url[1] ?? url[2]) as string, ms: performance.now() - started })
    })
  })
}

/**
 * Median time to ready of each command over `starts` rounds, after one untimed round (cold file
 * cache, SQLite's secret key). Rounds take the commands in turn, so a change in the machine's
 * load during the run falls on all of them alike.
 */
async function timeStarts(commands: { args: string[]; env: Record<string, string> }[]) {
  const times: number[][] = commands.map(() => [])
  for (let round = 0; round <= starts; round++) {
    for (const [i, command] of commands.entries()) {
      const s = await start(command.args, command.env)
      if (round > 0) times[i]?.push(s.ms)
      await stop(s.child)
    }
  }
  return times.map((ms) => ({ medianMs: Math.round(median(ms)), minMs: Math.round(Math.min(...ms)), starts }))
}

/** VmRSS and VmHWM of a process, in MB. */
function memory(pid: number) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0)
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 }
}

/** Drives POST `path` with `bodies` for --seconds, sampling the server's RSS; the peak and the answers. */
async function loadWithMemory(server: Started, path: string, bodies: string[], key: string) {
  const pid = server.child.pid as number
  let peak = memory(pid).rss
  const sampler = setInterval(() => {
    peak = Math.max(peak, memory(pid).rss)
  }, 100)
  let next = 0
  const result = await autocannon({
    url: `${server.url}${path}`,
    method: 'POST',
    connections,
    duration,
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    requests: [{ setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length] }) }],
  })
  clearInterval(sampler)
  const after = memory(pid)
  return {
    peakRssMB: Math.round(Math.max(peak, after.rss)),
    hwmMB: Math.round(after.hwm),
    rps: Math.round(result.requests.average),
    notAccepted: result.non2xx + result.errors + result.timeouts,
  }
}

/** A database holding `prospects` prospects of the bench account, and a key of that account. */
async function database(
  prospects: number,
): Promise<{ database: TestDatabase; key: string; prospects: number }> {
  const t = await createTestApp()
  const bench = await benchAccount(t)
  const filled = await populateProspects(t.db, bench, prospects)
  const access = await createIntegration(
    t.db,
    t.secretKey,
    { accountId: bench.account.id, groupId: bench.group.id, name: 'startup', scopes: ALL_SCOPES },
    'bench',
  )
  if (!access.ok) throw new Error(access.message)
  await t.app.close()
  await t.db.destroy()
  return { database: t.database, key: access.value.key, prospects: filled.prospects }
}

const build = spawnSync('npm', ['run', 'build', '--silent'], { encoding: 'utf8' })
if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`)

const env = { PORT: '0', LOG_LEVEL: 'warn', VENTAS_RATE_LIMIT: '1000000' }
const serve = ['dist/main.js', 'serve']
const report = (figure: string, r: object) => console.log(JSON.stringify({ engine: ENGINE, figure, ...r }))
const empty = await database(0)
const full = await database(count)
const running: ChildProcess[] = []
try {
  const [bareStart, emptyStart, fullStart] = await timeStarts([
    { args: ['--input-type=module', '-e', BARE], env: {} },
    { args: serve, env: { ...empty.database.env, ...env } },
    { args: serve, env: { ...full.database.env, ...env } },
  ])
  report('start to ready: ventas serve', { ...fullStart, prospects: full.prospects })
  report('start to ready: ventas serve, no prospects', { ...emptyStart })
  report('baseline: start to ready, bare Fastify', { ...bareStart })

  const one = generateLeads(5000, 0.3).map((lead) => JSON.stringify(lead))
  const many = Array.from({ length: 50 }, (_, i) =>
    JSON.stringify({ leads: generateLeads(batch, 0.3, 1000 + i) }),
  )
  const bare = await start(['--input-type=module', '-e', BARE], {})
  running.push(bare.child)
  const bareOne = await loadWithMemory(bare, '/v2/leads/retail', one, '')
  const bareMany = await loadWithMemory(bare, '/v2/leads/retail', many, '')
  const ventas = await start(serve, { ...full.database.env, ...env })
  running.push(ventas.child)
  const idle = memory(ventas.child.pid as number)
  const ventasOne = await loadWithMemory(ventas, '/v2/leads/retail', one, full.key)
  const ventasMany = await loadWithMemory(ventas, '/v2/leads/retail/batch', many, full.key)
  const extra = { prospects: full.prospects, connections, duration }
  report('RSS at ready: ventas serve', { rssMB: Math.round(idle.rss), prospects: full.prospects })
  report('RSS during POST /v2/leads/retail: ventas serve', { ...ventasOne, ...extra })
  report(`RSS during POST /v2/leads/retail/batch (${batch} leads): ventas serve`, { ...ventasMany, ...extra })
  report('baseline: RSS during POST, bare Fastify', { ...bareOne, connections, duration })
  report(`baseline: RSS during POST of ${batch}-lead bodies, bare Fastify`, {
    ...bareMany,
    connections,
    duration,
  })
} finally {
  for (const child of running) await stop(child)
  await empty.database.drop()
  await full.database.drop()
}
