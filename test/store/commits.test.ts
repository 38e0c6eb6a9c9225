import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import { newId } from '../../src/domain/ids.js'
import { enqueueJobs } from '../../src/jobs/queue.js'
import { jobsAnnouncer, watchOtherCommits } from '../../src/store/commits.js'
import { createTwoConnections, ENGINE } from '../helper.js'

/** Waits until `done()` or `ms` pass; true when it came true. */
async function eventually(done: () => boolean, ms = 2_000): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(5)) if (done()) return true
  return done()
}

describe(`waking on work another process commits (${ENGINE})`, () => {
  let two: Awaited<ReturnType<typeof createTwoConnections>>
  /** What `ventas api` does for a lead: queue its job, commit, announce it. */
  let queueLead: () => Promise<void>
  before(async () => {
    two = await createTwoConnections()
    const announce = jobsAnnouncer(two.second, two.storage)
    queueLead = async () => {
      await two.second.transaction().execute((tx) => enqueueJobs(tx, 'lead', [newId()], Date.now()))
      announce()
    }
  })
  after(() => two.close())

  /** A watcher on the first connection, counting its wakes, and stopped after `body` whatever happens. */
  async function watching(body: (wakes: () => number) => Promise<void>): Promise<void> {
    let wakes = 0
    const watch = watchOtherCommits(two.first, two.storage, () => (wakes += 1), { everyMs: 5 })
    try {
      await watch.ready
      await body(() => wakes)
    } finally {
      await watch.stop() // a listening connection left open would keep the test process alive
    }
  }

  test('a job queued by another process wakes the watcher at once; a stopped watcher stays asleep', async () => {
    let stoppedAt = 0
    let count: () => number = () => 0
    await watching(async (wakes) => {
      count = wakes
      // PostgreSQL wakes it once when it starts listening, for work queued before.
      const before = wakes()
      assert.equal(before, ENGINE === 'postgres' ? 1 : 0)
      await queueLead()
      assert.ok(await eventually(() => wakes() > before), 'not woken by a queued job')
      await sleep(50)
      assert.equal(wakes(), before + 1, 'one job woke it more than once')
    })
    stoppedAt = count()
    await queueLead()
    await sleep(50)
    assert.equal(count(), stoppedAt, 'a stopped watcher woke')
  })

  test("on SQLite any other connection's commit wakes it, and its own commits never do", {
    skip: ENGINE !== 'sqlite',
  }, async () => {
    await watching(async (wakes) => {
      await sql`insert into notes values ('mine')`.execute(two.first)
      await two.first.transaction().execute((tx) => enqueueJobs(tx, 'lead', [newId()], Date.now()))
      await sleep(50)
      assert.equal(wakes(), 0, 'its own commit woke it')
      await sql`insert into notes values ('theirs')`.execute(two.second)
      assert.ok(await eventually(() => wakes() === 1), `woken ${wakes()} times for one commit`)
    })
  })

  test('on PostgreSQL a listening connection that is lost listens again', {
    skip: ENGINE !== 'postgres',
  }, async () => {
    await watching(async (wakes) => {
      await sql`select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = 'ventas worker: listen' and datname = current_database()`.execute(two.second)
      // It listens again after a second, and wakes the worker for what was queued meanwhile.
      assert.ok(await eventually(() => wakes() === 2, 5_000), 'did not listen again')
      await queueLead()
      assert.ok(await eventually(() => wakes() === 3), 'not woken after listening again')
    })
  })

  test('on PostgreSQL a watcher never hears the jobs of another schema', {
    skip: ENGINE !== 'postgres',
  }, async () => {
    const other = await createTwoConnections()
    try {
      await watching(async (wakes) => {
        await other.second.transaction().execute((tx) => enqueueJobs(tx, 'lead', [newId()], Date.now()))
        jobsAnnouncer(other.second, other.storage)()
        await sleep(200)
        assert.equal(wakes(), 1, 'woken by a job of another schema')
      })
    } finally {
      await other.close()
    }
  })
})
