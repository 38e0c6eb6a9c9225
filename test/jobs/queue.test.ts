import assert from 'node:assert/strict'
import { after, before, beforeEach, describe, test } from 'node:test'
import { sql } from 'kysely'
import { loadConfig } from '../../src/config.js'
import { JOB_MAX_ATTEMPTS } from '../../src/domain/retry.js'
import { claimJobs, enqueueJobs, failJob, type Job } from '../../src/jobs/queue.js'
import { LeadWorker } from '../../src/jobs/worker.js'
import { connect } from '../../src/store/connect.js'
import type { Db } from '../../src/store/database.js'
import { migrateToLatest } from '../../src/store/migrator.js'
import { createTestDatabase, ENGINE, recordPlans, type TestDatabase } from '../helper.js'

/** The job queue (operations.md §4) on the real database: order, leases, retries, dead jobs. */
const NOW = 1_750_000_000_000
const LEASE = 30_000
const subjectsOf = (jobs: Job[]) => jobs.map((j) => j.subjectId).sort()

describe(`the job queue (${ENGINE})`, () => {
  let database: TestDatabase
  let db: Db
  let other: Db
  before(async () => {
    database = await createTestDatabase()
    const { storage } = loadConfig({ ...database.env, LOG_LEVEL: 'silent' })
    db = connect(storage, { poolSize: 4 })
    await migrateToLatest(db)
    other = connect(storage, { poolSize: 4 })
  })
  after(async () => {
    await db?.destroy()
    await other?.destroy()
    await database?.drop()
  })
  beforeEach(async () => {
    await db.deleteFrom('jobs').execute()
    await db.deleteFrom('leads').execute()
  })

  const jobOf = (subjectId: string) =>
    db.selectFrom('jobs').selectAll().where('subjectId', '=', subjectId).executeTakeFirstOrThrow()

  test('claimJobs takes the oldest runnable job first and never one under a live lease', async () => {
    // Enqueued out of order; `c` is leased by a live worker, `d` is dead, `later` is not due yet.
    for (const [subject, at] of [
      ['b', NOW - 4000],
      ['later', NOW + 2 * LEASE],
      ['e', NOW - 1000],
      ['c', NOW - 3000],
      ['a', NOW - 5000],
      ['d', NOW - 2000],
    ] as const)
      await enqueueJobs(db, 'lead', [subject], at)
    await db
      .updateTable('jobs')
      .set({ lockedBy: 'alive', lockedUntil: NOW + 2 * LEASE })
      .where('subjectId', '=', 'c')
      .execute()
    await db
      .updateTable('jobs')
      .set({ deadAt: NOW - 1 })
      .where('subjectId', '=', 'd')
      .execute()

    const order = []
    for (let claimed = await claimJobs(db, 'w1', 1, NOW, LEASE); claimed.length > 0; ) {
      order.push(...subjectsOf(claimed))
      claimed = await claimJobs(db, 'w1', 1, NOW, LEASE)
    }
    assert.deepEqual(order, ['a', 'b', 'e'])
    const a = await jobOf('a')
    assert.deepEqual([a.lockedBy, a.lockedUntil, a.attempts], ['w1', NOW + LEASE, 1])
    assert.deepEqual((await jobOf('c')).lockedBy, 'alive', 'the live lease is untouched')

    assert.deepEqual(await claimJobs(db, 'w2', 10, NOW + LEASE - 1, LEASE), [], 'w1 still holds its leases')
    const retaken = await claimJobs(db, 'w2', 10, NOW + LEASE + 1, LEASE)
    assert.deepEqual(subjectsOf(retaken), ['a', 'b', 'e'], 'expired leases are claimed again')
    assert.ok(retaken.every((j) => j.lockedBy === 'w2' && j.attempts === 2))
    assert.deepEqual(
      subjectsOf(await claimJobs(db, 'w3', 10, NOW + 2 * LEASE + 1, LEASE)),
      ['c', 'later'],
      'the dead job is never claimed',
    )
  })

  test('overlapping claims from two connection pools never take the same job', async () => {
    const subjects = Array.from({ length: 300 }, (_, i) => `s${i}`)
    await enqueueJobs(db, 'lead', subjects, NOW - 1000)
    const holder = new Map<string, string>()
    const duplicates: string[] = []
    for (let round = 0; holder.size < subjects.length && round < 50; round++) {
      const claims = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          claimJobs(i % 2 ? other : db, `w${i}`, 7, NOW, LEASE).then((jobs) => ({ worker: `w${i}`, jobs })),
        ),
      )
      for (const { worker, jobs } of claims) {
        for (const job of jobs) {
          if (holder.has(job.subjectId)) duplicates.push(job.subjectId)
          holder.set(job.subjectId, worker)
        }
      }
    }
    assert.deepEqual(duplicates, [], 'no job claimed twice')
    assert.equal(holder.size, subjects.length, 'every job claimed')
    const rows = await db.selectFrom('jobs').select(['subjectId', 'lockedBy', 'attempts']).execute()
    for (const row of rows) {
      assert.equal(row.lockedBy, holder.get(row.subjectId), `${row.subjectId} is held by its claimer`)
      assert.equal(row.attempts, 1)
    }
  })

  test('on PostgreSQL a claim reads the runnable index in order and its ids by key, whatever the statistics', {
    skip: ENGINE !== 'postgres' && 'PostgreSQL plans only',
  }, async () => {
    /** Claims 200 in a transaction as the worker does; the claim's plan, as node types and indexes. */
    const claimPlan = () =>
      db.transaction().execute(async (tx) => {
        const plans = recordPlans(tx, (statement) => statement.startsWith('update "jobs"'))
        const claimed = await claimJobs(tx, 'w', 200, NOW, LEASE)
        assert.equal(claimed.length, 200)
        assert.equal(plans.length, 1, 'one claim statement')
        return { first: claimed[0]?.subjectId, nodes: plans[0]?.nodes ?? [] }
      })
    const expectIndexed = ({ nodes }: { nodes: string[] }, when: string) => {
      assert.ok(!nodes.includes('Sort'), `${when}: no sort of the runnable jobs: ${nodes.join(', ')}`)
      assert.ok(
        nodes.includes('Index Scan jobs_runnable'),
        `${when}: the runnable index in order: ${nodes.join(', ')}`,
      )
      assert.ok(
        nodes.some((n) => n.endsWith('Index Scan jobs_pkey')),
        `${when}: the claimed ids by key: ${nodes.join(', ')}`,
      )
      assert.ok(!nodes.includes('Seq Scan'), `${when}: no scan of the table: ${nodes.join(', ')}`)
    }
    const burst = (prefix: string) =>
      enqueueJobs(
        db,
        'lead',
        Array.from({ length: 5000 }, (_, i) => `${prefix}${i}`),
        NOW - 1000,
      )
    // A burst into a queue never analyzed (a new database): the planner guesses from the table's size.
    await sql`truncate jobs`.execute(db)
    await burst('new')
    expectIndexed(await claimPlan(), 'no statistics')
    // A burst into a queue last analyzed empty: the planner expects a handful of runnable jobs.
    await db.deleteFrom('jobs').execute()
    await sql`analyze jobs`.execute(db)
    await burst('burst')
    const oldestFirst = (
      await db.selectFrom('jobs').select('subjectId').orderBy('runAt').orderBy('id').execute()
    ).map((j) => j.subjectId)
    const stale = await claimPlan()
    assert.equal(stale.first, oldestFirst[0], 'oldest first')
    expectIndexed(stale, 'statistics of an empty queue')
    // The same queue analyzed: the planner knows of thousands of jobs.
    await sql`analyze jobs`.execute(db)
    const fresh = await claimPlan()
    assert.equal(fresh.first, oldestFirst[200], 'the next oldest')
    expectIndexed(fresh, 'statistics of the burst')
  })

  test('failJob retries after 2^attempt s ±20 %, then parks the job as dead after its last attempt', async () => {
    await enqueueJobs(db, 'lead', ['flaky'], NOW)
    let now = NOW
    for (let attempt = 1; attempt <= JOB_MAX_ATTEMPTS; attempt++) {
      const [job] = await claimJobs(db, 'w', 1, now, LEASE)
      assert.ok(job, `attempt ${attempt} is claimable`)
      assert.equal(job.attempts, attempt)
      const outcome = await failJob(db, job, `boom ${attempt}`, now)
      const row = await jobOf('flaky')
      assert.deepEqual([row.lockedBy, row.lockedUntil, row.lastError], [null, null, `boom ${attempt}`])
      if (attempt < JOB_MAX_ATTEMPTS) {
        assert.equal(outcome, 'retry')
        assert.equal(row.deadAt, null)
        const base = Math.min(15_000 * 2 ** (attempt - 1), 3_600_000)
        const delay = row.runAt - now
        assert.ok(delay >= 0.8 * base && delay <= 1.2 * base, `attempt ${attempt}: retry in ${delay} ms`)
        assert.deepEqual(await claimJobs(db, 'w', 1, row.runAt - 1, LEASE), [], 'not before its time')
        now = row.runAt
      } else {
        assert.equal(outcome, 'dead')
        assert.equal(row.deadAt, now)
        assert.deepEqual(
          await claimJobs(db, 'w', 1, now + 365 * 86_400_000, LEASE),
          [],
          'a dead job stays put',
        )
      }
    }
  })

  test('a job whose lead no longer exists is removed', async () => {
    await enqueueJobs(db, 'lead', ['000000000000000000000000'], NOW - 1)
    assert.equal(await new LeadWorker(db, { now: () => NOW }).runOnce(), 1)
    assert.deepEqual(await db.selectFrom('jobs').select('id').execute(), [])
  })

  test('a lead that cannot be applied keeps its job, with the error, the attempt and a later run', async () => {
    const id = '0123456789abcdef01234567'
    await db
      .insertInto('leads')
      .values({
        id,
        accountId: 'acc',
        groupId: 'grp',
        integrationId: 'int',
        industry: 'retail',
        receivedAt: NOW - 1,
        status: 'queued',
        merged: 0,
        body: '{"utmSource": "web", "phones": [', // cut short: parsing the body throws
        requestHash: 'x',
      })
      .execute()
    await enqueueJobs(db, 'lead', [id], NOW - 1)
    const worker = new LeadWorker(db, { now: () => NOW })

    assert.equal(await worker.runOnce(), 1)
    const job = await jobOf(id)
    assert.equal(job.attempts, 1)
    assert.match(job.lastError ?? '', /SyntaxError|JSON/)
    assert.deepEqual([job.lockedBy, job.lockedUntil, job.deadAt], [null, null, null])
    assert.ok(job.runAt >= NOW + 12_000 && job.runAt <= NOW + 18_000, `retry at +${job.runAt - NOW} ms`)
    const lead = await db.selectFrom('leads').select('status').where('id', '=', id).executeTakeFirstOrThrow()
    assert.equal(lead.status, 'queued')
    assert.equal(await worker.runOnce(), 0, 'the retry is not due yet')
  })
})
