import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import { newId } from '../../src/domain/ids.js'
import { enqueueJobs } from '../../src/jobs/queue.js'
import { watchOtherCommits } from '../../src/store/commits.js'
import type { Db } from '../../src/store/database.js'
import { createTwoConnections, ENGINE } from '../helper.js'

/** Waits until `done()` or `ms` pass; true when it came true. */
async function eventually(done: () => boolean, ms = 2_000): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(5)) if (done()) return true
  return done()
}

const queueLead = (db: Db) => db.transaction().execute((tx) => enqueueJobs(tx, 'lead', [newId()], Date.now()))

describe(`waking on work another process commits (${ENGINE})`, () => {
  let two: Awaited<ReturnType<typeof createTwoConnections>>
  before(async () => {
    two = await createTwoConnections()
  })
  after(() => two.close())

  test('a job queued by another process wakes the watcher at once; a stopped watcher stays asleep', async () => {
    let wakes = 0
    const stop = watchOtherCommits(two.first, two.storage, () => (wakes += 1), 5)
    try {
      // PostgreSQL wakes it once when it starts listening, for work queued before; SQLite takes
      // its first reading of data_version.
      if (ENGINE === 'postgres') assert.ok(await eventually(() => wakes === 1), 'not listening')
      else await sleep(30)
      const before = wakes
      await queueLead(two.second)
      assert.ok(await eventually(() => wakes > before), 'not woken by a queued job')
    } finally {
      await stop() // a listening connection left open would keep the test process alive
    }
    const stopped = wakes
    await queueLead(two.second)
    await sleep(50)
    assert.equal(wakes, stopped, 'a stopped watcher woke')
  })

  test("on SQLite any other connection's commit wakes it, and its own commits never do", {
    skip: ENGINE !== 'sqlite',
  }, async () => {
    let wakes = 0
    const stop = watchOtherCommits(two.first, two.storage, () => (wakes += 1), 5)
    try {
      await sleep(30)
      await sql`insert into notes values ('mine')`.execute(two.first)
      await queueLead(two.first)
      await sleep(50)
      assert.equal(wakes, 0, 'its own commit woke it')
      await sql`insert into notes values ('theirs')`.execute(two.second)
      assert.ok(await eventually(() => wakes === 1), `woken ${wakes} times for one commit`)
      await sleep(50)
      assert.equal(wakes, 1, 'one commit woke it more than once')
    } finally {
      await stop()
    }
  })

  test('on PostgreSQL a listening connection that is lost listens again', {
    skip: ENGINE !== 'postgres',
  }, async () => {
    let wakes = 0
    const stop = watchOtherCommits(two.first, two.storage, () => (wakes += 1), 5)
    try {
      assert.ok(await eventually(() => wakes === 1), 'not listening')
      await sql`select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = 'ventas worker: listen'`.execute(two.second)
      // It listens again after a second, and wakes the worker for what was queued meanwhile.
      assert.ok(await eventually(() => wakes === 2, 5_000), 'did not listen again')
      await queueLead(two.second)
      assert.ok(await eventually(() => wakes === 3), 'not woken after listening again')
    } finally {
      await stop()
    }
  })
})
