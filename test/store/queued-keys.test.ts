import assert from 'node:assert/strict'
import { after, before, beforeEach, describe, test } from 'node:test'
import { sql } from 'kysely'
import { loadConfig } from '../../src/config.js'
import { enqueueJobs } from '../../src/jobs/queue.js'
import { connect } from '../../src/store/connect.js'
import type { Db } from '../../src/store/database.js'
import { findQueuedKeys, type QueuedKey } from '../../src/store/leads.js'
import { migrateToLatest } from '../../src/store/migrator.js'
import { createTestDatabase, ENGINE, recordPlans, type TestDatabase } from '../helper.js'

/**
 * The match keys of queued leads, which a lead reads to wait for the older ones of its person
 * (identity.md §6): the right rows on both engines, index lookups on PostgreSQL whatever the
 * planner's statistics say (BENCHMARKS.md §3).
 */
const NOW = 1_750_000_000_000
const ACCOUNT = 'account-a'
const BURST = 20_000

/** Lead i holds phone i; every third lead also the email of person i % 700, which others share. */
const keysOf = (i: number) => [
  `phone:+55119${String(i).padStart(8, '0')}`,
  ...(i % 3 ? [] : [`email:p${i % 700}@x.br`]),
]
const leadId = (account: string, i: number) => `${account}-lead-${String(i).padStart(5, '0')}`
const pairs = (keys: Pick<QueuedKey, 'leadId' | 'keyValue'>[]) =>
  keys.map((k) => `${k.leadId} ${k.keyValue}`).sort()

describe(`the queued keys of a batch (${ENGINE})`, () => {
  let database: TestDatabase
  let db: Db
  before(async () => {
    database = await createTestDatabase()
    const { storage } = loadConfig({ ...database.env, LOG_LEVEL: 'silent' })
    db = connect(storage, { poolSize: 2 })
    await migrateToLatest(db)
  })
  beforeEach(async () => {
    await db.deleteFrom('leadKeys').execute()
    await db.deleteFrom('jobs').execute()
  })
  after(async () => {
    await db?.destroy()
    await database?.drop()
  })

  /** Queues leads `from`..`to` of an account: their keys, and a job each. */
  const queue = async (account: string, from: number, to: number) => {
    const ids = Array.from({ length: to - from }, (_, n) => leadId(account, from + n))
    const rows = ids.flatMap((id, n) =>
      keysOf(from + n).map((keyValue) => ({
        accountId: account,
        keyValue,
        leadId: id,
        receivedAt: NOW + from + n,
      })),
    )
    for (let i = 0; i < rows.length; i += 500)
      await db
        .insertInto('leadKeys')
        .values(rows.slice(i, i + 500))
        .execute()
    for (let i = 0; i < ids.length; i += 500)
      await enqueueJobs(db, 'lead', ids.slice(i, i + 500), NOW + 60_000)
  }

  test('a read finds the keys of the account, received by then, whose job is alive, with its run time', async () => {
    await queue(ACCOUNT, 0, 30)
    await queue('account-b', 0, 30)
    await db.updateTable('jobs').set({ deadAt: NOW }).where('subjectId', '=', leadId(ACCOUNT, 3)).execute()
    await enqueueJobs(db, 'lead', [leadId(ACCOUNT, 4)], NOW + 90_000) // a second live job: a row each
    const asked = [
      ...keysOf(0),
      ...keysOf(3),
      ...keysOf(4),
      ...keysOf(9),
      ...keysOf(29),
      'phone:+5500000000000',
    ]
    const found = await findQueuedKeys(db, ACCOUNT, asked, NOW + 9)
    assert.deepEqual(
      pairs(found),
      pairs(
        [0, 4, 4, 9].flatMap((i) => keysOf(i).map((keyValue) => ({ leadId: leadId(ACCOUNT, i), keyValue }))),
      ),
    )
    const times = found
      .map((k) => `${k.leadId} ${Number(k.receivedAt) - NOW} ${Number(k.runAt) - NOW}`)
      .sort()
    assert.deepEqual(
      times,
      [
        ...keysOf(0).map(() => `${leadId(ACCOUNT, 0)} 0 60000`),
        `${leadId(ACCOUNT, 4)} 4 60000`,
        `${leadId(ACCOUNT, 4)} 4 90000`,
        ...keysOf(9).map(() => `${leadId(ACCOUNT, 9)} 9 60000`),
      ].sort(),
      'each key with its receipt, and the run time of each live job of its lead',
    )
  })

  test('on PostgreSQL both reads look up an index, whatever the statistics, and sequential scans come back after', {
    skip: ENGINE !== 'postgres' && 'PostgreSQL plans only',
  }, async () => {
    const asked = Array.from({ length: 300 }, (_, n) => keysOf(1000 + 7 * n)).flat()
    const wanted = new Set(asked)
    const held = Array.from({ length: BURST }, (_, i) => keysOf(i).filter((k) => wanted.has(k))).flat()
    /** One read in a transaction as the worker makes it: its statements' plans, and the setting after it. */
    const read = () =>
      db.transaction().execute(async (tx) => {
        const plans = recordPlans(tx, (statement) => statement.startsWith('select'))
        const found = await findQueuedKeys(tx, ACCOUNT, asked, NOW + BURST)
        const { rows } = await sql<{
          setting: string
        }>`select current_setting('enable_seqscan') as setting`.execute(tx)
        return { found: found.length, plans, after: rows[0]?.setting }
      })
    const expectLookups = ({ found, plans, after }: Awaited<ReturnType<typeof read>>, when: string) => {
      assert.equal(found, held.length, `${when}: every queued key asked for`)
      const keys = plans.filter((p) => p.sql.includes('from "lead_keys"')).map((p) => p.nodes.join(' > '))
      const jobs = plans.filter((p) => p.sql.includes('from "jobs"')).map((p) => p.nodes.join(' > '))
      assert.equal(keys.length + jobs.length, plans.length, `${when}: only keys and jobs read`)
      assert.ok(keys.length > 0 && jobs.length > 0, `${when}: both read`)
      for (const plan of keys)
        assert.match(
          plan,
          /^(Bitmap Heap Scan > Bitmap )?Index Scan lead_keys_value$/,
          `${when}: keys by value`,
        )
      for (const plan of jobs)
        assert.match(
          plan,
          /^(Bitmap Heap Scan > Bitmap )?Index Scan jobs_subject$/,
          `${when}: jobs by subject`,
        )
      assert.equal(after, 'on', `${when}: sequential scans allowed again`)
    }
    // A burst into a queue last analyzed when drained: the planner believes the tables empty.
    await sql`analyze lead_keys, jobs`.execute(db)
    await queue(ACCOUNT, 0, BURST)
    expectLookups(await read(), 'statistics of a drained queue')
    await sql`analyze lead_keys, jobs`.execute(db)
    expectLookups(await read(), 'statistics of the burst')
  })
})
