/**
 * What a sender's claim costs beside a lane with a long backlog (target 7's isolation, in
 * isolation): a subscription whose endpoint hangs keeps every delivery queued to it due since it
 * was queued, and its lane, full, is skipped by every claim. Times `claimDeliveries` taking one
 * claim's worth (three rounds of a subscription's share, 192) from a lane of fast deliveries, each
 * claim's deliveries then marked delivered (untimed), as a fast receiver's are:
 * - baseline, same run: with no other lane;
 * - beside `--backlog` deliveries queued to a lane skipped as busy, as the worker skips a full lane;
 * - across `--lanes` lanes, each with a backlog, none busy, their due times interleaved in rounds
 *   of `--round` a lane (the queue after an outage of Ventas itself, or of a network every endpoint
 *   sits behind).
 * On PostgreSQL the table is analyzed once filled, as autovacuum would. Usage:
 *   npm run bench -- claims [--backlog 100000] [--claims 200] [--lanes 50] [--round 8]
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench -- claims
 */
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { sql } from 'kysely'
import { claimDeliveries, insertDeliveries } from '../src/store/deliveries.js'
import { LANE_ROUNDS, PER_SUBSCRIPTION } from '../src/webhooks/lanes.js'
import { createTestApp, ENGINE } from '../test/helper.js'

const { values } = parseArgs({
  options: {
    backlog: { type: 'string', default: '100000' },
    claims: { type: 'string', default: '200' },
    lanes: { type: 'string', default: '50' },
    round: { type: 'string', default: '8' },
  },
  allowPositionals: true,
})
const backlog = Number(values.backlog)
const claims = Number(values.claims)
const lanes = Number(values.lanes)
const roundSize = Number(values.round)
const LIMIT = (LANE_ROUNDS - 1) * PER_SUBSCRIPTION

const t = await createTestApp()
/** Queues `count` deliveries to a subscription, its events numbered from `first`, due from `at`. */
const queue = async (subscriptionId: string, count: number, at: number, first = 0) => {
  for (let i = 0; i < count; i += 5000) {
    const deliveries = Array.from({ length: Math.min(5000, count - i) }, (_, j) => ({
      accountId: 'account-bench',
      subscriptionId,
      eventId: `${subscriptionId}-${first + i + j}`,
      topic: 'leads',
      type: 'processed',
      body: null,
    }))
    await insertDeliveries(t.db, deliveries, at + i)
  }
}

/** Times `claims` claims of LIMIT, each then delivered; returns the median and the 90th percentile, ms. */
async function timeClaims(busy: string[]): Promise<{ p50: number; p90: number }> {
  const times: number[] = []
  for (let i = 0; i < claims; i++) {
    const started = performance.now()
    const claimed = await claimDeliveries(t.db, 'bench', {
      limit: LIMIT,
      now: Date.now(),
      leaseMs: 60_000,
      busy,
    })
    times.push(performance.now() - started)
    if (claimed.length !== LIMIT) throw new Error(`claimed ${claimed.length} of ${LIMIT}`)
    await t.db
      .updateTable('deliveries')
      .set({ status: 'delivered', lockedBy: null, lockedUntil: null })
      .where(
        'id',
        'in',
        claimed.map((d) => d.id),
      )
      .execute()
  }
  times.sort((a, b) => a - b)
  const at = (q: number) => Number((times[Math.floor(q * (times.length - 1))] as number).toFixed(2))
  return { p50: at(0.5), p90: at(0.9) }
}

const report = (figure: string, value: object) =>
  console.log(JSON.stringify({ engine: ENGINE, figure, ...value }))
const analyzed = async () => {
  if (ENGINE === 'postgres') await sql`analyze deliveries`.execute(t.db)
}

const started = Date.now() - 3_600_000
// Each part's fast lane is due after the backlog, as the fast receiver's deliveries are.
const fastLane = (name: string) => queue(name, 2 * claims * LIMIT, started + backlog + 1)
await fastLane('sub-fast-alone')
await analyzed()
await timeClaims([]) // warm-up
report('baseline: a claim of 192, no other lane', await timeClaims([]))
await queue('sub-hanging', backlog, started)
await fastLane('sub-fast-beside')
await analyzed()
report('a claim of 192 beside a backlog skipped as busy', { backlog, ...(await timeClaims(['sub-hanging'])) })

// Every lane backlogged: the parts before are set aside (on PostgreSQL then vacuumed, as
// autovacuum would after so large an update: otherwise every claim walks their dead index entries),
// then each lane gets its share of twice what the claims take, queued in rounds of `--round` a
// lane, lane after lane, so that due times interleave.
await t.db.updateTable('deliveries').set({ status: 'delivered' }).where('status', '=', 'pending').execute()
if (ENGINE === 'postgres') await sql`vacuum deliveries`.execute(t.db)
const perLane = Math.ceil((2 * claims * LIMIT) / lanes)
for (let round = 0; round * roundSize < perLane; round++) {
  const first = round * roundSize
  for (let lane = 0; lane < lanes; lane++) {
    await queue(
      `sub-lane-${lane}`,
      Math.min(roundSize, perLane - first),
      started + round * lanes + lane,
      first,
    )
  }
}
await analyzed()
report('a claim of 192 across lanes each backlogged', {
  lanes,
  perLane,
  round: roundSize,
  ...(await timeClaims([])),
})
await t.close()
