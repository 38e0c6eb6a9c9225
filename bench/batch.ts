/**
 * `POST /v2/leads/retail/batch` (auth, each lead validated and parsed alone, all committed
 * together, 202 with a receipt per lead) in leads per second, for bodies of each `--sizes`, beside
 * same-run baselines: the bare Fastify route (bench/bare.ts) receiving the same bodies (HTTP
 * and JSON parsing, no Ventas code); a raw insert of as many rows as wide as a stored lead,
 * one transaction per body, through the engine's driver with no Ventas code (better-sqlite3 with
 * the same pragmas, or pg with one multi-row insert; bench/raw.ts); and two floors over HTTP
 * (bench/bare.ts's batch route): the route committing those raw rows, and the route checking each
 * lead on Ventas's checker thread first, then committing them (no auth, no match keys, no jobs: the
 * most any batch intake doing the checks could reach with the cheapest durable storage). The second
 * floor runs just before and just after Ventas, and Ventas is compared with the mean of the two:
 * the host's speed moves within minutes. Ventas runs as `ventas api` (no worker beside it) on a
 * fresh database; autocannon sends a fixed number of bodies to each server, after a few untimed.
 * Every answer must carry a receipt per lead, and every table must hold exactly what was sent.
 * Usage:
 *   npm run bench -- batch [--sizes 100,1000] [--leads 100000] [--connections 4]
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench -- batch
 *   add --profile DIR to run the dist/ build under node --cpu-prof (npm run build first); the
 *   baselines then still run from the sources, unprofiled, so the ratios are not like for like.
 */
import type { ChildProcess } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { createTestDatabase, type TestDatabase } from '../test/helper.js'
import { generateLeads } from './leads.js'
import { openRawTable } from './raw.js'
import { startBare, startVentas, stop, type Ventas } from './servers.js'

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100,1000' },
    leads: { type: 'string', default: '100000' },
    connections: { type: 'string', default: '4' },
    profile: { type: 'string' },
  },
  allowPositionals: true,
})
const sizes = values.sizes.split(',').map(Number)
const total = Number(values.leads)
const connections = Number(values.connections)

/** Bodies of `size` leads each, cycling through 5,000 generated leads (or more, for big bodies). */
function batches(size: number): string[][] {
  const leads = generateLeads(Math.max(5000, size * 5), 0.3).map((lead) => JSON.stringify(lead))
  const out: string[][] = []
  for (let i = 0; i + size <= leads.length; i += size) out.push(leads.slice(i, i + size))
  return out
}

/** autocannon sends `amount` bodies; leads per second, per-request latency, and the leads the answers took. */
async function load(
  url: string,
  headers: Record<string, string>,
  bodies: string[],
  amount: number,
  size: number,
) {
  let next = 0
  let receipts = 0
  // autocannon's own duration ends at its next 1-second sample after the last answer: too coarse here.
  let finished = 0
  const started = performance.now()
  const result = await autocannon({
    url,
    method: 'POST',
    connections: Math.min(connections, amount),
    amount,
    headers: { 'content-type': 'application/json', ...headers },
    requests: [
      {
        setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length] as string }),
        onResponse: (status, body) => {
          finished = performance.now()
          if (status !== 202) return
          const parsed = JSON.parse(body) as { results?: { id?: string }[] }
          receipts += parsed.results ? parsed.results.filter((r) => r.id).length : size
        },
      },
    ],
  })
  return {
    leadsPerSecond: Math.round((amount * size) / ((finished - started) / 1000)),
    p50ms: result.latency.p50,
    p99ms: result.latency.p99,
    notAccepted: result.non2xx + result.errors + result.timeouts + (amount * size - receipts),
  }
}

/** Rows as wide as stored leads, one transaction of `size` rows per body (bench/raw.ts); rows per second. */
async function insertRaw(bodies: string[][], amount: number): Promise<number> {
  const database = await createTestDatabase()
  const table = await openRawTable(database.url)
  try {
    const started = performance.now()
    for (let i = 0; i < amount; i++) await table.insert(bodies[i % bodies.length] as string[])
    const seconds = (performance.now() - started) / 1000
    return (amount * (bodies[0]?.length ?? 0)) / seconds
  } finally {
    await table.close()
    await database.drop()
  }
}

let ventas: Ventas | undefined
const servers: { child: ChildProcess }[] = []
const databases: TestDatabase[] = []
let failed = false
try {
  // Each floor writes a table of its own, so both are measured on tables of the same size.
  const [rawRows, checkedRows] = [await createTestDatabase(), await createTestDatabase()]
  databases.push(rawRows, checkedRows)
  const bare = await startBare()
  servers.push(bare)
  const rawFloor = await startBare(['--store'], { RAW_DATABASE_URL: rawRows.url })
  servers.push(rawFloor)
  const checksFloor = await startBare(['--check', '--store'], { RAW_DATABASE_URL: checkedRows.url })
  servers.push(checksFloor)
  ventas = await startVentas('api', values.profile ? { profileDir: values.profile } : {})
  const engine = ventas.engine
  let sent = 0
  for (const size of sizes) {
    const leads = batches(size)
    const bodies = leads.map((batch) => `{"leads":[${batch.join(',')}]}`)
    const amount = Math.max(1, Math.round(total / size))
    const warmup = Math.min(amount, 2 * connections)
    // A few bodies untimed, then `amount` timed; refusals in either count.
    const measure = async (url: string, headers: Record<string, string> = {}) => {
      const warm = await load(url, headers, bodies, warmup, size)
      const timed = await load(url, headers, bodies, amount, size)
      return { ...timed, notAccepted: warm.notAccepted + timed.notAccepted }
    }
    const base = await measure(`${bare.url}/batch`)
    const durable = await measure(`${rawFloor.url}/batch`)
    const checkedBefore = await measure(`${checksFloor.url}/batch`)
    const ours = await measure(`${ventas.url}/v2/leads/retail/batch`, { 'x-api-key': ventas.key })
    const checkedAfter = await measure(`${checksFloor.url}/batch`)
    const raw = await insertRaw(leads, amount)
    sent += (warmup + amount) * size
    const floor = (checkedBefore.leadsPerSecond + checkedAfter.leadsPerSecond) / 2
    console.log(
      JSON.stringify({ engine, figure: 'POST /v2/leads/retail/batch', size, bodies: amount, ...ours }),
    )
    console.log(
      JSON.stringify({ engine, figure: 'baseline: bare Fastify route, same bodies', size, ...base }),
    )
    console.log(
      JSON.stringify({
        engine,
        figure: 'baseline: raw insert, a transaction per body',
        size,
        rowsPerSecond: Math.round(raw),
      }),
    )
    console.log(
      JSON.stringify({ engine, figure: 'floor: the bare route committing raw rows', size, ...durable }),
    )
    console.log(
      JSON.stringify({
        engine,
        figure:
          'floor: the bare route checking each lead (thread), then committing raw rows, before and after Ventas',
        size,
        leadsPerSecond: Math.round(floor),
        before: checkedBefore,
        after: checkedAfter,
      }),
    )
    const ratio = (figure: number) => Number((ours.leadsPerSecond / figure).toFixed(2))
    console.log(
      JSON.stringify({
        engine,
        figure: 'batch / bare route, / raw insert, / raw rows over HTTP, / checks and raw rows',
        size,
        value: [base.leadsPerSecond, raw, durable.leadsPerSecond, floor].map(ratio),
      }),
    )
    failed ||= [ours, base, durable, checkedBefore, checkedAfter].some((r) => r.notAccepted > 0)
  }
  await ventas.stop()
  const stored = await ventas.count()
  const [rawStored, checkedStored] = [await countRaw(rawRows.url), await countRaw(checkedRows.url)]
  console.log(
    JSON.stringify({ engine, figure: 'check', sent, stored, rawStored, checkedStored, connections }),
  )
  failed ||= stored !== sent || rawStored !== sent || checkedStored !== 2 * sent
  if (failed) console.error('batch: not every lead was accepted and stored')
} finally {
  await ventas?.stop()
  for (const server of servers) await stop(server.child)
  await ventas?.drop()
  for (const database of databases) await database.drop()
}
if (failed) process.exit(1)

async function countRaw(url: string): Promise<number> {
  const table = await openRawTable(url)
  try {
    return await table.count()
  } finally {
    await table.close()
  }
}
