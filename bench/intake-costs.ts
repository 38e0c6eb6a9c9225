/**
 * What one lead of a batch costs inside the process, on SQLite, without HTTP: checking it
 * (`checkLead`) and storing it (`storeRequests` in 1,000-lead transactions), and each SQL statement
 * the storing runs, timed around better-sqlite3's own calls. The baseline in the same run is a
 * floor, not a like-for-like: one row a lead holding its body and ids (no secondary index, no key
 * or job rows), inserted by better-sqlite3 in transactions of the same size with no Ventas code.
 * The key, group and blocked-value reads of a request are not here (a batch makes them once).
 * A second database, stored to in turn with the first (so both meet the same moments of a shared
 * host), lacks one index: `lead_keys_value`, the match keys of queued leads by value, which keeps
 * one person's leads in order (identity.md §6). The difference is what that index costs a lead,
 * its commit included.
 * Usage:
 *   npm run bench -- intake-costs [--transactions 200]
 * Prints one JSON line per figure, in microseconds a lead.
 */
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import SQLite from 'better-sqlite3'
import { sql } from 'kysely'
import { checkLead } from '../src/services/checking.js'
import { storeRequests } from '../src/services/intake.js'
import type { Lead } from '../src/store/leads.js'
import { createTestApp, ENGINE } from '../test/helper.js'
import { generateLeads } from './leads.js'
import { benchAccount } from './setup.js'

const { values } = parseArgs({
  options: { transactions: { type: 'string', default: '200' } },
  allowPositionals: true,
})
if (ENGINE !== 'sqlite') {
  // It times better-sqlite3's calls; `npm run bench` on PostgreSQL goes on to the next benchmark.
  console.log(
    JSON.stringify({ figure: 'intake costs', skipped: 'SQLite only: it times better-sqlite3 statements' }),
  )
  process.exit(0)
}
const transactions = Number(values.transactions)
const PER_TRANSACTION = 1000

// Each statement's time, by the start of its SQL, while `timing` is on.
const spent = new Map<string, number>()
let timing = false
const probe = new SQLite(':memory:')
const statement = Object.getPrototypeOf(probe.prepare('select 1'))
probe.close()
for (const method of ['run', 'all', 'get'] as const) {
  const original = statement[method]
  statement[method] = function (this: { source: string }, ...args: unknown[]) {
    if (!timing) return original.apply(this, args)
    const started = performance.now()
    try {
      return original.apply(this, args)
    } finally {
      const key = this.source.slice(0, 60)
      spent.set(key, (spent.get(key) ?? 0) + performance.now() - started)
    }
  }
}

const t = await createTestApp()
const { integration, group } = await benchAccount(t)
const u = await createTestApp()
await sql`drop index lead_keys_value`.execute(u.db)
const inputs = generateLeads(20_000, 0.3)
const leads = transactions * PER_TRANSACTION
let checking = 0
let storing = 0
let storingUnindexed = 0
const widths: string[] = []
for (let b = 0; b < transactions; b++) {
  const started = performance.now()
  const batch: Lead[] = []
  for (let i = 0; i < PER_TRANSACTION; i++) {
    const input = inputs[(b * PER_TRANSACTION + i) % inputs.length] as (typeof inputs)[number]
    const checked = checkLead(input, {
      integration,
      group,
      industry: 'retail',
      blocked: new Set(),
      at: Date.now(),
    })
    if (!checked.ok) throw new Error(`a generated lead was refused: ${JSON.stringify(checked.refusal)}`)
    batch.push(checked.lead)
  }
  checking += performance.now() - started
  // Which database goes first alternates, so neither always meets a cache the other warmed.
  for (const db of b % 2 === 0 ? [t.db, u.db] : [u.db, t.db]) {
    const before = performance.now()
    timing = db === t.db
    await db.transaction().execute((tx) => storeRequests(tx, [{ leads: batch, at: Date.now() }]))
    timing = false
    if (db === t.db) storing += performance.now() - before
    else storingUnindexed += performance.now() - before
  }
  if (b === 0) widths.push(...batch.map((l) => JSON.stringify(l.body)))
}
const stored = await t.db
  .selectFrom('leads')
  .select((eb) => eb.fn.countAll<number>().as('n'))
  .executeTakeFirstOrThrow()
if (Number(stored.n) !== leads) throw new Error(`stored ${stored.n} of ${leads} leads`)

// The floor: as many narrow rows holding the lead bodies, in transactions of the same size.
const raw = new SQLite(`${t.database.sqlitePath}.raw`) // beside it, in the folder t.close() removes
raw.pragma('journal_mode = WAL')
raw.pragma('synchronous = FULL')
raw.exec(
  'create table raw_leads (id integer primary key, account_id text, group_id text, received_at integer, body text, match_keys text)',
)
const insert = raw.prepare(
  'insert into raw_leads (account_id, group_id, received_at, body, match_keys) values (?, ?, ?, ?, ?)',
)
const commit = raw.transaction((bodies: string[]) => {
  for (const body of bodies) insert.run(group.accountId, group.id, Date.now(), body, '["+5511987654321"]')
})
const rawStarted = performance.now()
for (let b = 0; b < transactions; b++) commit(widths)
const rawUs = ((performance.now() - rawStarted) * 1000) / leads
raw.close()
await t.close()
await u.close()

const perLead = (ms: number) => Number(((ms * 1000) / leads).toFixed(1))
console.log(JSON.stringify({ figure: 'check a lead', usPerLead: perLead(checking), leads }))
console.log(
  JSON.stringify({ figure: 'store a lead (1,000 a transaction)', usPerLead: perLead(storing), leads }),
)
console.log(
  JSON.stringify({
    figure: 'store a lead, without the index of queued leads by match key (in turn with the above)',
    usPerLead: perLead(storingUnindexed),
    leads,
  }),
)
for (const [source, ms] of [...spent].sort((a, b) => b[1] - a[1]))
  console.log(JSON.stringify({ figure: 'of which the statement', sql: source, usPerLead: perLead(ms) }))
console.log(
  JSON.stringify({
    figure: 'baseline (a floor): one narrow row a lead with its body, same transactions',
    usPerLead: Number(rawUs.toFixed(1)),
  }),
)
