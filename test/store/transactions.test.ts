import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import { type Db, type Executor, unflushedTransaction } from '../../src/store/database.js'
import { createTestApp, createTwoConnections, ENGINE, type TestContext } from '../helper.js'

/** How the connection would commit now: SQLite's synchronous level, PostgreSQL's synchronous_commit. */
async function commitMode(db: Executor): Promise<string> {
  if (ENGINE === 'sqlite') {
    const { rows } = await sql<{ synchronous: number }>`pragma synchronous`.execute(db)
    return { 0: 'off', 1: 'normal', 2: 'full', 3: 'extra' }[rows[0]?.synchronous ?? -1] ?? 'unknown'
  }
  const { rows } = await sql<{ synchronousCommit: string }>`show synchronous_commit`.execute(db)
  return rows[0]?.synchronousCommit ?? 'unknown'
}

describe(`transactions that need not be flushed (${ENGINE})`, () => {
  let t: TestContext
  before(async () => {
    t = await createTestApp()
  })
  after(() => t.close())

  const relaxed = ENGINE === 'sqlite' ? 'normal' : 'off'
  const strict = ENGINE === 'sqlite' ? 'full' : 'on'

  test('only the work inside commits unflushed; the level is back after it, and after a failure', async () => {
    assert.equal(await commitMode(t.db), strict)
    const inside = await unflushedTransaction(t.db, (tx) => commitMode(tx))
    assert.equal(inside, relaxed)
    assert.equal(await commitMode(t.db), strict)
    await assert.rejects(
      unflushedTransaction(t.db, async () => {
        throw new Error('work failed')
      }),
      /work failed/,
    )
    assert.equal(await commitMode(t.db), strict)
  })

  test('a transaction started meanwhile commits flushed, never under the relaxed level', async () => {
    let other: Promise<string> | undefined
    const inside = await unflushedTransaction(t.db, async (tx) => {
      // Started while the relaxed transaction is open: on SQLite it waits for the one connection,
      // which must not be handed over before the level is restored.
      other = t.db.transaction().execute((otherTx) => commitMode(otherTx))
      await new Promise((resolve) => setTimeout(resolve, 20))
      return commitMode(tx)
    })
    assert.equal(inside, relaxed)
    assert.equal(await other, strict)
  })
})

describe("waiting for another connection's write lock (sqlite)", { skip: ENGINE !== 'sqlite' }, () => {
  let first: Db
  let second: Db
  let close: () => Promise<void>
  before(async () => {
    ;({ first, second, close } = await createTwoConnections())
  })
  after(() => close())

  test('a transaction waits for the lock without holding up the event loop, then commits', async () => {
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const holding = first.transaction().execute(async (tx) => {
      await sql`insert into notes values ('first')`.execute(tx)
      await held
    })
    await new Promise((resolve) => setTimeout(resolve, 10))
    // Waiting inside SQLite's busy handler would block this thread, and with it the commit the
    // wait is for, until busy_timeout ran out with SQLITE_BUSY.
    const waiting = second.transaction().execute((tx) => sql`insert into notes values ('second')`.execute(tx))
    await new Promise((resolve) => setTimeout(resolve, 20))
    release()
    await holding
    await waiting
    const { rows } = await sql<{ body: string }>`select body from notes order by rowid`.execute(second)
    assert.deepEqual(
      rows.map((r) => r.body),
      ['first', 'second'],
    )
  })
})
