/**
 * Lead processing rate (normalise, merge, route, events) on the engine DATABASE_URL names
 * (SQLite by default), beside a same-run baseline: a raw insert loop of rows as wide as a lead,
 * through the same driver with no Ventas code. Usage:
 *   npm run bench -- processing [--leads 5000]
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench -- processing [--workers 2] [--drained]
 * Prints one JSON line per figure. Leads are stored first (not timed), then one in-process worker
 * drains the queue (timed); with `--workers N`, N `ventas worker` processes drain it instead.
 * With `--drained`, 200 leads are queued and applied first and the queue's tables analyzed once
 * empty (PostgreSQL): the statistics autovacuum leaves between two bursts, which the burst then
 * outgrows. They are the generator's first 200, so the burst's first people have prospects
 * already (about 140 of its 14,079 at 20,000 leads).
 */
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { sql } from 'kysely'
import type { LeadInput } from '../src/http/schemas/lead.js'
import { LeadWorker } from '../src/jobs/worker.js'
import { checkLead } from '../src/services/checking.js'
import { storeLeads } from '../src/services/intake.js'
import type { Lead } from '../src/store/leads.js'
import { createTestApp, ENGINE } from '../test/helper.js'
import { spawnWorker, stopWorkers, waitUntil } from '../test/jobs/workers.js'
import { generatePeopleLeads } from './leads.js'
import { benchAccount } from './setup.js'

const { values } = parseArgs({
  options: {
    leads: { type: 'string', default: '5000' },
    workers: { type: 'string', default: '0' },
    drained: { type: 'boolean', default: false },
  },
  allowPositionals: true,
})
const total = Number(values.leads)
const processes = Number(values.workers)

const t = await createTestApp({ now: Date.now() })
const { group, integration } = await benchAccount(t)

// Baseline: the same number of rows, as wide as a stored lead, inserted one per transaction.
const checkedLeads = (inputs: LeadInput[]) =>
  inputs.flatMap((input) => {
    const checked = checkLead(input, {
      integration,
      group,
      industry: 'retail',
      blocked: new Set(),
      at: Date.now(),
    })
    return checked.ok ? [checked.lead as Lead] : []
  })
const { leads: inputs, people } = generatePeopleLeads(total, 0.3)
const leads = checkedLeads(inputs)
await sql`create table bench_rows (id text primary key, body text not null, received_at bigint not null)`.execute(
  t.db,
)
let started = performance.now()
for (const lead of leads) {
  await t.db
    .transaction()
    .execute((tx) =>
      sql`insert into bench_rows (id, body, received_at) values (${randomBytes(12).toString('hex')}, ${JSON.stringify(lead.body)}, ${lead.receivedAt})`.execute(
        tx,
      ),
    )
}
const baseline = leads.length / ((performance.now() - started) / 1000)

if (values.drained) {
  await storeLeads(t.db, checkedLeads(generatePeopleLeads(200, 0.3).leads), { at: Date.now() })
  const worker = new LeadWorker(t.db, { batch: 200 })
  while ((await worker.runOnce()) > 0) {}
  if (ENGINE === 'postgres') await sql`analyze`.execute(t.db) // SQLite keeps no statistics unless asked
}

let seconds: number
if (processes === 0) {
  for (let i = 0; i < leads.length; i += 1000)
    await storeLeads(t.db, leads.slice(i, i + 1000), { at: Date.now() })
  const worker = new LeadWorker(t.db, { batch: 200 })
  started = performance.now()
  while ((await worker.runOnce()) > 0) {}
  seconds = (performance.now() - started) / 1000
} else {
  // `ventas worker` processes, started and idle first; timed from the first lead stored to the
  // queue empty, so storing (a few hundred ms) is inside the figure.
  const workers = Array.from({ length: processes }, () => spawnWorker(t.database))
  await delay(4000)
  started = performance.now()
  for (let i = 0; i < leads.length; i += 1000)
    await storeLeads(t.db, leads.slice(i, i + 1000), { at: Date.now() })
  await waitUntil(
    'the workers have emptied the queue',
    async () => (await t.db.selectFrom('jobs').select('id').limit(1).executeTakeFirst()) === undefined,
    { timeoutMs: 600_000, workers, everyMs: 20 },
  )
  seconds = (performance.now() - started) / 1000
  await stopWorkers(workers)
}
const prospects = await t.db
  .selectFrom('prospects')
  .select((eb) => eb.fn.countAll<number>().as('n'))
  .where('mergedInto', 'is', null)
  .executeTakeFirstOrThrow()
// A rate counts only work that was done: every lead applied onto a live prospect, no job left.
const unapplied = await t.db
  .selectFrom('leads')
  .leftJoin('prospects', 'prospects.id', 'leads.prospectId')
  .select((eb) => eb.fn.countAll<number>().as('n'))
  .where((eb) => eb.or([eb('leads.status', '!=', 'processed'), eb('prospects.mergedInto', 'is not', null)]))
  .executeTakeFirstOrThrow()
const left = await t.db.selectFrom('jobs').select('id').limit(1).executeTakeFirst()
if (Number(unapplied.n) > 0 || left || Number(prospects.n) === 0)
  throw new Error(`${unapplied.n} leads not applied onto a live prospect; jobs left: ${left ? 'yes' : 'no'}`)

const report = (figure: string, value: number, unit: string, extra: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ engine: ENGINE, figure, value: Math.round(value), unit, ...extra }))
report('processing', leads.length / seconds, 'leads/s', {
  drained: values.drained,
  workers: processes === 0 ? 'one, in this process' : `${processes} ventas worker processes`,
  leads: leads.length,
  people,
  prospects: Number(prospects.n),
  seconds: Number(seconds.toFixed(2)),
})
report('baseline: one insert per transaction', baseline, 'rows/s')
console.log(
  JSON.stringify({
    engine: ENGINE,
    figure: 'processing / baseline',
    value: Number((leads.length / seconds / baseline).toFixed(2)),
  }),
)
await t.close()
