import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import { hashApiKey } from '../../src/domain/api-key.js'
import { ALL_SCOPES } from '../../src/domain/scopes.js'
import {
  createIntegration,
  revealKey,
  revokeIntegration,
  rotateIntegrationKey,
} from '../../src/services/access.js'
import { bootstrapIfEmpty } from '../../src/services/bootstrap.js'
import { findAuditTrail } from '../../src/store/audit.js'
import { connect } from '../../src/store/connect.js'
import { findIntegration } from '../../src/store/integrations.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { type Seed, seed } from '../seed.js'

describe(`API Access integrations (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
  })
  after(() => t.close())

  const status = async (key: string) =>
    (await t.app.inject({ method: 'GET', url: '/v1/integration', headers: { 'x-api-key': key } })).statusCode

  test('create, rotate and revoke each leave an audit record; the old key dies at rotation', async () => {
    const created = await createIntegration(
      t.db,
      t.secretKey,
      { accountId: s.a.account.id, groupId: s.a.norte.id, name: 'ML feed', scopes: ['leads:write'] },
      'user:admin',
    )
    assert.ok(created.ok)
    const { integration, key } = created.value
    assert.equal(await status(key), 200)
    const rotated = await rotateIntegrationKey(t.db, t.secretKey, integration.id, 'cli')
    assert.ok(rotated.ok)
    assert.notEqual(rotated.value.key, key)
    assert.equal(await status(key), 401)
    assert.equal(await status(rotated.value.key), 200)
    assert.ok((await revokeIntegration(t.db, integration.id, 'cli')).ok)
    assert.equal(await status(rotated.value.key), 401)
    const again = await revokeIntegration(t.db, integration.id, 'cli')
    assert.equal(!again.ok && again.code, 'CONFLICT')
    const trail = await findAuditTrail(t.db, integration.id)
    assert.deepEqual(
      trail.map((e) => [e.action, e.actor]),
      [
        ['integration.created', 'user:admin'],
        ['integration.rotated', 'cli'],
        ['integration.revoked', 'cli'],
      ],
    )
  })

  test('refusals name the field: unknown scope, no scopes, group or user of another account', async () => {
    const base = { accountId: s.a.account.id, groupId: s.a.root.id, name: 'x', scopes: ['leads:write'] }
    const cases = [
      [{ ...base, scopes: ['leads:read'] }, 'INVALID', /scopes: "leads:read"/],
      [{ ...base, scopes: [] }, 'INVALID', /scopes/],
      [{ ...base, name: ' ' }, 'INVALID', /name/],
      [{ ...base, groupId: s.b.root.id }, 'NOT_FOUND', /group/],
      [{ ...base, actAsUserId: s.b.agent.id }, 'NOT_FOUND', /user/],
    ] as const
    for (const [input, code, message] of cases) {
      const result = await createIntegration(t.db, t.secretKey, input as typeof base, 'test')
      assert.equal(result.ok, false, JSON.stringify(input))
      assert.ok(
        !result.ok && result.code === code && message.test(result.message),
        !result.ok ? result.message : '',
      )
    }
  })

  test('the key is stored sealed and hashed: the row holds no plain key, and reveal returns it', async () => {
    const row = await findIntegration(t.db, s.integrations.all.id)
    assert.ok(row)
    assert.equal(row.keyHash, hashApiKey(s.keys.all))
    assert.equal(revealKey(row, t.secretKey), s.keys.all)
    const dump = await t.db.selectFrom('integrations').selectAll().execute()
    assert.ok(!JSON.stringify(dump).includes(s.keys.all))
    assert.ok(!JSON.stringify(dump).includes(s.keys.all.slice(3, 20)))
  })

  test('the SQLite file on disk never contains a key in plain text', {
    skip: ENGINE !== 'sqlite' && 'SQLite only',
  }, async () => {
    await sql`pragma wal_checkpoint(TRUNCATE)`.execute(t.db)
    const bytes = readFileSync(t.database.sqlitePath as string)
    for (const key of Object.values(s.keys)) {
      assert.equal(bytes.includes(Buffer.from(key)), false)
      assert.equal(bytes.includes(Buffer.from(key.slice(3))), false)
    }
    assert.ok(
      bytes.includes(Buffer.from(hashApiKey(s.keys.all))),
      'the check reads the real file: the hash is there',
    )
  })
})

describe(`first-run bootstrap (${ENGINE})`, () => {
  let t: TestContext
  before(async () => {
    t = await createTestApp()
  })
  after(() => t.close())

  test('an empty database gets one account, group, administrator and all-scopes key; twice or concurrently, once', async () => {
    const second = connect(t.config.storage, { poolSize: 2 })
    try {
      // Two processes starting together: truly concurrent on PostgreSQL. SQLite serves one process
      // at a time (better-sqlite3 blocks its thread while it waits for a lock), so there in turn.
      const both = [
        () => bootstrapIfEmpty(t.db, t.secretKey, 'BR'),
        () => bootstrapIfEmpty(second, t.secretKey, 'BR'),
      ]
      const results =
        ENGINE === 'postgres'
          ? await Promise.all(both.map((run) => run()))
          : [await both[0]?.(), await both[1]?.()]
      const made = results.filter((r) => r !== null)
      assert.equal(made.length, 1)
      assert.equal(await bootstrapIfEmpty(t.db, t.secretKey, 'BR'), null)
      const first = made[0]
      assert.ok(first)
      assert.equal(first.email, 'admin@example.com')
      assert.equal(first.groupName, 'Ventas')
      const counts = await Promise.all(
        (['accounts', 'groups', 'users', 'integrations'] as const).map(async (table) =>
          Number(
            (
              await t.db
                .selectFrom(table)
                .select((eb) => eb.fn.countAll().as('n'))
                .executeTakeFirstOrThrow()
            ).n,
          ),
        ),
      )
      assert.deepEqual(counts, [1, 1, 1, 1])
      const res = await t.app.inject({
        method: 'GET',
        url: '/v1/integration',
        headers: { authorization: `Bearer ${first.key}` },
      })
      assert.equal(res.statusCode, 200)
      assert.deepEqual(res.json().scopes, ALL_SCOPES)
      assert.equal(res.json().name, 'Demo API Access')
    } finally {
      await second.destroy()
    }
  })
})
