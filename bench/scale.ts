/**
 * Lead processing rate against the number of prospects already stored (issue 6, target 4: at
 * 1,000,000 at least 0.8× the rate at 10,000), on the engine DATABASE_URL names (SQLite by
 * default). The same-run baseline is the rate on the smallest database of the list. Usage:
 *   npm run bench -- scale [--prospects 10000,100000,1000000] [--leads 5000] [--max-seconds 180] [--chart PATH]
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench -- scale
 * For each size, a fresh database is filled with that many existing prospects (bench/population.ts,
 * not timed), the same leads as bench/processing.ts are stored (not timed), and one in-process
 * worker drains them (timed). None of the leads' people is among the existing prospects, so each
 * run does the same work and only the size of the tables differs. A size whose drain passes
 * --max-seconds stops after the claim in hand (200 leads) and reports the rate of what it did.
 * Prints one JSON line per figure
 * and draws the rates as an SVG line chart (default bench/processing-vs-prospects.svg; with
 * PostgreSQL, …-postgres.svg).
 */
import { writeFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { sql } from 'kysely'
import { LeadWorker } from '../src/jobs/worker.js'
import { checkLead } from '../src/services/checking.js'
import { storeLeads } from '../src/services/intake.js'
import type { Db } from '../src/store/database.js'
import type { Lead } from '../src/store/leads.js'
import { createTestApp, ENGINE } from '../test/helper.js'
import { generatePeopleLeads } from './leads.js'
import { populateProspects } from './population.js'
import { benchAccount } from './setup.js'

const { values } = parseArgs({
  options: {
    prospects: { type: 'string', default: '10000,100000,1000000' },
    leads: { type: 'string', default: '5000' },
    'max-seconds': { type: 'string', default: '180' },
    chart: {
      type: 'string',
      default: `bench/processing-vs-prospects${ENGINE === 'postgres' ? '-postgres' : ''}.svg`,
    },
  },
  allowPositionals: true,
})
const sizes = values.prospects
  .split(',')
  .map(Number)
  .sort((a, b) => a - b)
const total = Number(values.leads)
const maxMs = Number(values['max-seconds']) * 1000

/**
 * Starts each drain from a settled database: the load's last WAL pages are copied into the file
 * and flushed before the clock starts, not by the checkpointer thread while the drain is timed.
 * PostgreSQL checkpoints.
 */
async function settle(db: Db): Promise<void> {
  await (ENGINE === 'sqlite' ? sql`pragma wal_checkpoint(truncate)` : sql`checkpoint`).execute(db)
}

/** Stores `count` leads on a database holding `existing` prospects, then times one worker draining them. */
async function measure(existing: number, count: number) {
  const t = await createTestApp({ now: Date.now() })
  try {
    const bench = await benchAccount(t)
    const filled = await populateProspects(t.db, bench, existing)
    const { leads: inputs, people } = generatePeopleLeads(count, 0.3)
    const at = Date.now()
    const leads = inputs.flatMap((input) => {
      const checked = checkLead(input, { ...bench, industry: 'retail', blocked: new Set(), at })
      return checked.ok ? [checked.lead] : []
    })
    for (let i = 0; i < leads.length; i += 1000)
      await storeLeads(t.db, leads.slice(i, i + 1000) as Lead[], { at })
    await settle(t.db)
    // The worker as `ventas worker` runs it: claims and transactions of its default size (200).
    const worker = new LeadWorker(t.db)
    const started = performance.now()
    while ((await worker.runOnce()) > 0 && performance.now() - started < maxMs) {}
    const seconds = (performance.now() - started) / 1000
    // Every lead handled was applied, and each made or joined a prospect of its own people, none
    // of the existing ones (their people never meet): else the rate is of something else.
    const applied = await t.db
      .selectFrom('leads')
      .innerJoin('prospects', 'prospects.id', 'leads.prospectId')
      .select((eb) => [
        eb.fn.countAll<number>().as('leads'),
        eb.fn.count<number>('prospects.id').distinct().as('prospects'),
        eb.fn.min<number>('prospects.createdAt').as('oldest'),
      ])
      .where('leads.status', '=', 'processed')
      .where('leads.receivedAt', '=', at)
      .executeTakeFirstOrThrow()
    const done = Number(applied.leads)
    if (done === 0 || Number(applied.oldest) < at)
      throw new Error(
        `at ${existing}: ${JSON.stringify(applied)} applied, or an existing prospect was matched`,
      )
    if (Number(applied.prospects) > people)
      throw new Error(`at ${existing}: ${applied.prospects} new prospects for ${people} people`)
    return {
      rate: done / seconds,
      leads: done,
      people: Number(applied.prospects),
      capped: done < leads.length,
      seconds,
      populate: filled.seconds,
    }
  } finally {
    await t.close()
  }
}

// Warm-up on a small database, so the first size measured does not also pay for JIT compilation:
// 25 transactions. (With 1,000 leads, 5 transactions, the first size read 12 % below the second.)
const WARM_UP = 5000
await measure(1000, Math.min(total, WARM_UP))
const results: { existing: number; rate: number; newProspects: number; capped: boolean }[] = []
for (const existing of sizes) {
  const r = await measure(existing, total)
  results.push({ existing, rate: r.rate, newProspects: r.people, capped: r.capped })
  console.log(
    JSON.stringify({
      engine: ENGINE,
      figure: 'processing',
      existingProspects: existing,
      value: Math.round(r.rate),
      unit: 'leads/s',
      leads: r.leads,
      newProspects: r.people,
      ...(r.capped ? { stoppedAfterSeconds: Number(values['max-seconds']) } : {}),
      seconds: Number(r.seconds.toFixed(2)),
      populateSeconds: Number(r.populate.toFixed(1)),
    }),
  )
}
// The same leads make the same prospects whatever the size (a few of bench/leads.ts's people share
// an email and merge): a size that made a different number matched something else.
const drained = results.filter((r) => !r.capped)
if (new Set(drained.map((r) => r.newProspects)).size > 1)
  throw new Error(`the same leads made different prospects: ${JSON.stringify(drained)}`)
const [base, ...rest] = results
if (base) {
  for (const r of rest) {
    console.log(
      JSON.stringify({
        engine: ENGINE,
        figure: `processing at ${r.existing} / at ${base.existing} existing prospects`,
        value: Number((r.rate / base.rate).toFixed(2)),
      }),
    )
  }
  writeFileSync(values.chart, chart(results, `Lead processing rate, ${ENGINE}, ${total} leads`))
}

/** A line chart of leads/s (linear y from 0) against existing prospects (log x), values labelled. */
function chart(points: { existing: number; rate: number }[], title: string): string {
  const [width, height, left, right, top, bottom] = [640, 400, 70, 30, 40, 60]
  const plotW = width - left - right
  const plotH = height - top - bottom
  const lo = Math.floor(Math.log10(Math.min(...points.map((p) => p.existing))))
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...points.map((p) => p.existing)))))
  // y ticks at a round step (1, 2, 2.5 or 5 × a power of ten), about five of them
  const rough = (Math.max(...points.map((p) => p.rate)) * 1.15) / 5 || 1
  const magnitude = 10 ** Math.floor(Math.log10(rough))
  const yStep = ([1, 2, 2.5, 5, 10].find((m) => m * magnitude >= rough) ?? 10) * magnitude
  const yMax = Math.ceil((rough * 5) / yStep) * yStep
  const x = (n: number) => left + ((Math.log10(n) - lo) / (hi - lo)) * plotW
  const y = (r: number) => top + plotH - (r / yMax) * plotH
  const out: string[] = []
  for (let e = lo; e <= hi; e++) {
    out.push(`<line x1="${x(10 ** e)}" y1="${top}" x2="${x(10 ** e)}" y2="${top + plotH}" stroke="#ddd"/>`)
    out.push(
      `<text x="${x(10 ** e)}" y="${top + plotH + 18}" text-anchor="middle">${(10 ** e).toLocaleString('en')}</text>`,
    )
  }
  for (let v = 0; v <= yMax; v += yStep) {
    out.push(`<line x1="${left}" y1="${y(v)}" x2="${left + plotW}" y2="${y(v)}" stroke="#eee"/>`)
    out.push(`<text x="${left - 8}" y="${y(v) + 4}" text-anchor="end">${v}</text>`)
  }
  const line = points.map((p) => `${x(p.existing).toFixed(1)},${y(p.rate).toFixed(1)}`).join(' ')
  out.push(`<polyline points="${line}" fill="none" stroke="#1f6feb" stroke-width="2"/>`)
  for (const p of points) {
    out.push(`<circle cx="${x(p.existing).toFixed(1)}" cy="${y(p.rate).toFixed(1)}" r="4" fill="#1f6feb"/>`)
    out.push(
      `<text x="${x(p.existing).toFixed(1)}" y="${(y(p.rate) - 10).toFixed(1)}" text-anchor="middle">${Math.round(p.rate)}</text>`,
    )
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<title>${title}</title>`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${title}</text>`,
    ...out,
    `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text x="${left + plotW / 2}" y="${height - 18}" text-anchor="middle">existing prospects (log scale)</text>`,
    `<text transform="translate(18 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">leads/s</text>`,
    '</svg>',
    '',
  ].join('\n')
}
