import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import Database from 'better-sqlite3'
import type { Running } from '../../src/server.js'
import { createTestDatabase, ENGINE, startTestServer, type TestDatabase } from '../helper.js'

/**
 * `ventas api` beside another process that holds SQLite's write lock (a `ventas worker` in the
 * middle of a transaction): a lead waits for the lock to commit, and meanwhile the API still reads
 * keys and groups, so a request it can refuse is answered at once instead of queuing behind that
 * commit (BENCHMARKS.md §6).
 */
describe(`ventas api while another process holds the write lock (${ENGINE})`, {
  skip: ENGINE !== 'sqlite' && 'SQLite only: PostgreSQL has no database-wide write lock',
}, () => {
  let database: TestDatabase
  let running: Running
  let key: string
  before(async () => {
    database = await createTestDatabase()
    const started = await startTestServer(database.env, false)
    running = started.running
    key = started.key
  })
  after(async () => {
    await running?.stop()
    await database?.drop()
  })

  const post = (apiKey: string, body: unknown) =>
    fetch(`${running.url}/v2/leads/retail`, {
      method: 'POST',
      headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })

  test('refusals that read the key and the group are answered while a lead waits for the lock', async () => {
    const other = new Database(database.sqlitePath as string)
    try {
      other.exec('begin immediate')
      let settled = false
      const waiting = post(key, {
        utmSource: 'web',
        firstName: 'Ana',
        phones: ['+55 51 98765-4321'],
      }).finally(() => {
        settled = true
      })
      await delay(300) // the lead reaches its commit and waits for the lock
      assert.equal(settled, false, 'the lead waits for the lock')
      let held = true
      const behind = running.db
        .selectFrom('groups')
        .select('id')
        .execute()
        .finally(() => {
          held = false
        })
      await delay(50)
      assert.equal(held, true, "the lead's commit holds the API's connection while it waits")
      const unknownKey = await post('vk_not_a_key_of_anyone_0000000000', {
        utmSource: 'web',
        firstName: 'Ana',
      })
      assert.equal(unknownKey.status, 401)
      const noContact = await post(key, { utmSource: 'web', firstName: 'Ana', phones: ['12'] })
      assert.equal(noContact.status, 422, await noContact.text())
      assert.equal(settled, false, 'both answered while the lead still waited')
      other.exec('commit')
      assert.equal((await waiting).status, 202)
      await behind
    } finally {
      if (other.inTransaction) other.exec('rollback')
      other.close()
    }
  })
})
