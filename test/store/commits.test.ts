import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import { watchOtherCommits } from '../../src/store/commits.js'
import type { Db } from '../../src/store/database.js'
import { createTwoConnections, ENGINE } from '../helper.js'

/** Waits until `done()` or `ms` pass; true when it came true. */
async function eventually(done: () => boolean, ms = 2_000): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(5)) if (done()) return true
  return done()
}

describe('waking on commits of another process (sqlite)', { skip: ENGINE !== 'sqlite' }, () => {
  let mine: Db
  let theirs: Db
  let close: () => Promise<void>
  before(async () => {
    ;({ first: mine, second: theirs, close } = await createTwoConnections())
  })
  after(() => close())

  test("another connection's commit wakes the watcher; its own commits and a stopped watcher do not", async () => {
    let wakes = 0
    const stop = watchOtherCommits(mine, () => (wakes += 1), 5)
    await sleep(30) // the first reading is taken
    await sql`insert into notes values ('mine')`.execute(mine)
    await sleep(50)
    assert.equal(wakes, 0, 'its own commit woke it')

    await sql`insert into notes values ('theirs')`.execute(theirs)
    assert.ok(await eventually(() => wakes === 1), `woken ${wakes} times for one commit`)
    await sleep(50)
    assert.equal(wakes, 1, 'one commit woke it more than once')

    stop()
    await sql`insert into notes values ('after')`.execute(theirs)
    await sleep(50)
    assert.equal(wakes, 1, 'a stopped watcher woke')
  })
})
