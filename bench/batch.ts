/**
 * `POST /v2/leads/retail/batch` (auth, each lead validated and parsed alone, all committed
 * together, 202 with a receipt per lead) in leads per second, for bodies of each `--sizes`, beside
 * same-run baselines: the bare Fastify route (bench/bare.ts) receiving the same bodies (HTTP
 * and JSON parsing, no Ventas code); a raw insert of as many rows as wide as a stored lead,
 * one transaction per body, through the engine's driver with no Ventas code (better-sqlite3 with
 * the same pragmas, or pg with one multi-row insert; bench/raw.ts); and two floors over HTTP
 * (bench/bare.ts's batch route): the route committing those raw rows, and the route checking each
 * lead on Ventas's checker thread first, then committing them (no auth, no match keys, no jobs: the
 * most any batch intake doing the checks could reach with the cheapest durable storage). Ventas
 * runs as `ventas api` (no worker beside it) on a fresh database; autocannon sends a fixed number
 * of bodies to each server.
 * Usage:
 *   npm run bench -- batch [--sizes 100,1000] [--leads 100000] [--connections 4]
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench -- batch
 *   add --profile DIR to run the dist/ build under node --cpu-prof (npm run build first)
 */
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { createTestDatabase } from '../test/helper.js'
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

// Each floor writes a table of its own, so both are measured on tables of the same size.
const [rawOnly, rawChecked] = [await createTestDatabase(), await createTestDatabase()]
const bare = await startBare()
const storing = await startBare(['--store'], { RAW_DATABASE_URL: rawOnly.url })
const both = await startBare(['--check', '--store'], { RAW_DATABASE_URL: rawChecked.url })
let ventas: Ventas | undefined
let failed = false
try {
  ventas = await startVentas('api', values.profile ? { profileDir: values.profile } : {})
  const engine = ventas.engine
  let sent = 0
  for (const size of sizes) {
    const leads = batches(size)
    const bodies = leads.map((batch) => `{"leads":[${batch.join(',')}]}`)
    const amount = Math.max(1, Math.round(total / size))
    const warmup = Math.min(amount, 2 * connections)
    const url = `${ventas.url}/v2/leads/retail/batch`
    const auth = { 'x-api-key': ventas.key }
    await load(bare.url, {}, bodies, warmup, size)
    const base = await load(bare.url, {}, bodies, amount, size)
    const floor = async (server: { url: string }) => {
      await load(`${server.url}/batch`, {}, bodies, warmup, size)
      return load(`${server.url}/batch`, {}, bodies, amount, size)
    }
    const durable = await floor(storing)
    const checked = await floor(both)
    const warm = await load(url, auth, bodies, warmup, size)
    const ours = await load(url, auth, bodies, amount, size)
    const raw = await insertRaw(leads, amount)
    sent += (warmup + amount) * size
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
        figure: 'floor: the bare route checking each lead (thread), then committing raw rows',
        size,
        ...checked,
      }),
    )
    const ratio = (figure: number) => Number((ours.leadsPerSecond / figure).toFixed(2))
    console.log(
      JSON.stringify({
        engine,
        figure: 'batch / bare route, / raw insert, / raw rows over HTTP, / checks and raw rows',
        size,
        value: [base.leadsPerSecond, raw, durable.leadsPerSecond, checked.leadsPerSecond].map(ratio),
      }),
    )
    failed ||= [warm, ours, base, durable, checked].some((r) => r.notAccepted > 0)
  }
  await ventas.stop()
  const stored = await ventas.count()
  console.log(JSON.stringify({ engine, figure: 'check', sent, stored, connections }))
  failed ||= stored !== sent
  if (failed) console.error('batch: not every lead was accepted and stored')
} finally {
  await ventas?.stop()
  for (const server of [bare, storing, both]) await stop(server.child)
  await ventas?.drop()
  await rawOnly.drop()
  await rawChecked.drop()
}
if (failed) process.exit(1)
