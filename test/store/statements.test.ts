import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { INSERT_CHUNK, insertRows, reusable, updateRows } from '../../src/store/database.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'

describe(`statements written or compiled once outside Kysely's builder (${ENGINE})`, () => {
  let t: TestContext
  before(async () => {
    t = await createTestApp()
  })
  after(() => t.close())

  test('rows past one statement are all stored, each value in its own column', async () => {
    await insertRows(t.db, 'leadKeys', []) // no statement at all (Kysely's builder throws on none)
    const rows = Array.from({ length: 2 * INSERT_CHUNK + 7 }, (_, i) => ({
      accountId: `account-${i % 3}`,
      keyValue: `+5511987${String(i).padStart(6, '0')}`,
      leadId: `lead-${i}`,
      receivedAt: 1_700_000_000_000 + i,
    }))
    await insertRows(t.db, 'leadKeys', rows)
    const stored = await t.db.selectFrom('leadKeys').selectAll().orderBy('receivedAt').execute()
    assert.deepEqual(
      stored.map((r) => ({ ...r, receivedAt: Number(r.receivedAt) })),
      rows,
    )
  })

  test('a column one row sets and another leaves undefined is null in the other', async () => {
    const job = { kind: 'lead' as const, runAt: 1, attempts: 0, maxAttempts: 5, createdAt: 1 }
    await insertRows(t.db, 'jobs', [
      { ...job, id: 'job-b', subjectId: 'lead-b', lockedBy: undefined },
      { ...job, id: 'job-a', subjectId: 'lead-a', lockedBy: 'worker-1', lockedUntil: 99 },
    ])
    const stored = await t.db
      .selectFrom('jobs')
      .select(['id', 'lockedBy', 'lockedUntil', 'deadAt'])
      .where('id', 'in', ['job-a', 'job-b'])
      .orderBy('id')
      .execute()
    assert.deepEqual(
      stored.map((r) => ({ ...r, lockedUntil: r.lockedUntil === null ? null : Number(r.lockedUntil) })),
      [
        { id: 'job-a', lockedBy: 'worker-1', lockedUntil: 99, deadAt: null },
        { id: 'job-b', lockedBy: null, lockedUntil: null, deadAt: null },
      ],
    )
  })

  test('a statement whose rows all leave a column out gives it its default, as Kysely did', async () => {
    const lead = {
      accountId: 'account-1',
      groupId: 'group-1',
      integrationId: 'integration-1',
      industry: 'retail',
      receivedAt: 1,
      status: 'queued' as const,
      processedAt: null,
      prospectId: null,
      merged: 0,
      error: null,
      body: '{}',
      providerRef: null,
      requestHash: 'hash',
    }
    // The first statement's rows leave matchKeys out; the last row, in a statement of its own, sets it.
    const rows = Array.from({ length: INSERT_CHUNK + 1 }, (_, i) => ({
      ...lead,
      id: `lead-${String(i).padStart(4, '0')}`,
      ...(i === INSERT_CHUNK ? { matchKeys: '["+5511987654321"]' } : {}),
    }))
    await insertRows(t.db, 'leads', rows)
    const stored = await t.db.selectFrom('leads').select(['id', 'matchKeys']).orderBy('id').execute()
    assert.equal(stored.length, INSERT_CHUNK + 1)
    assert.deepEqual(new Set(stored.slice(0, INSERT_CHUNK).map((r) => r.matchKeys)), new Set(['[]']))
    assert.equal(stored[INSERT_CHUNK]?.matchKeys, '["+5511987654321"]')
  })

  test('on a conflict, DO NOTHING keeps the stored row; an update sets only the columns named', async () => {
    const key = {
      integrationId: 'integration-1',
      key: 'k1',
      requestHash: 'first',
      leadId: 'lead-1',
      createdAt: 1,
    }
    await insertRows(t.db, 'idempotencyKeys', [key])
    await insertRows(t.db, 'idempotencyKeys', [{ ...key, requestHash: 'second', leadId: 'lead-2' }], {
      on: ['integrationId', 'key'],
    })
    const read = () =>
      t.db
        .selectFrom('idempotencyKeys')
        .select(['requestHash', 'leadId'])
        .where('integrationId', '=', 'integration-1')
        .executeTakeFirstOrThrow()
    assert.deepEqual(await read(), { requestHash: 'first', leadId: 'lead-1' })
    await insertRows(t.db, 'idempotencyKeys', [{ ...key, requestHash: 'third', leadId: 'lead-3' }], {
      on: ['integrationId', 'key'],
      update: ['requestHash'],
    })
    assert.deepEqual(await read(), { requestHash: 'third', leadId: 'lead-1' })
    await assert.rejects(insertRows(t.db, 'idempotencyKeys', [key]), /unique|UNIQUE|duplicate/)
  })

  test('an update from a list sets each row its own values, past one statement, and the shared ones', async () => {
    const ids = Array.from({ length: 2 * INSERT_CHUNK + 7 }, (_, i) => `update-${String(i).padStart(4, '0')}`)
    const job = { kind: 'lead' as const, runAt: 1, attempts: 0, maxAttempts: 5, createdAt: 1 }
    await insertRows(
      t.db,
      'jobs',
      ids.map((id) => ({ ...job, id, subjectId: id })),
    )
    const [untouched, ...changed] = ids
    // A bigint and an integer column from the list: PostgreSQL needs their types named.
    const rows = changed.map((id, i) => ({
      id,
      runAt: 1_700_000_000_000 + i,
      attempts: i % 7,
      lastError: `e${i}`,
    }))
    await updateRows(t.db, 'jobs', 'id', rows, {
      same: { lockedBy: 'worker-9' },
      types: { runAt: 'bigint', attempts: 'integer' },
    })
    const stored = await t.db
      .selectFrom('jobs')
      .select(['id', 'runAt', 'attempts', 'lastError', 'lockedBy'])
      .where('id', 'like', 'update-%')
      .orderBy('id')
      .execute()
    assert.deepEqual(
      stored.map((r) => ({ ...r, runAt: Number(r.runAt) })),
      [
        { id: untouched, runAt: 1, attempts: 0, lastError: null, lockedBy: null },
        ...rows.map((r) => ({ ...r, lockedBy: 'worker-9' })),
      ],
    )
  })

  test('a reusable query runs with the values of each call', async () => {
    const keyOf = reusable((db, v: { integrationId: string; key: string }) =>
      db
        .selectFrom('idempotencyKeys')
        .select(['leadId', 'requestHash'])
        .where('integrationId', '=', v.integrationId)
        .where('key', '=', v.key),
    )
    const rows = ['a', 'b', 'c'].map((k) => ({
      integrationId: 'integration-2',
      key: k,
      requestHash: `hash-${k}`,
      leadId: `lead-${k}`,
      createdAt: 1,
    }))
    await insertRows(t.db, 'idempotencyKeys', rows)
    for (const k of ['c', 'a', 'b']) {
      const { rows: found } = await keyOf(t.db, { integrationId: 'integration-2', key: k })
      assert.deepEqual(found, [{ leadId: `lead-${k}`, requestHash: `hash-${k}` }])
    }
    const { rows: none } = await keyOf(t.db, { integrationId: 'integration-3', key: 'a' })
    assert.deepEqual(none, [])
    const counted = reusable((db, v: { hash: string }) =>
      db
        .updateTable('idempotencyKeys')
        .set({ requestHash: v.hash })
        .where('integrationId', '=', 'integration-2'),
    )
    const result = await t.db.transaction().execute((tx) => counted(tx, { hash: 'same' }))
    assert.equal(result.numAffectedRows, 3n)
  })

  test('a reusable query reads every item of a list of any length, compiled once for each power of two', async () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({
      integrationId: 'integration-4',
      key: `k${i}`,
      requestHash: 'h',
      leadId: `lead-${i}`,
      createdAt: 1,
    }))
    await insertRows(t.db, 'idempotencyKeys', rows)
    let builds = 0
    const byKeys = reusable((db, v: { integrationId: string; keys: string[] }) => {
      builds += 1
      return db
        .selectFrom('idempotencyKeys')
        .select('leadId')
        .where('integrationId', '=', v.integrationId)
        .where('key', 'in', v.keys)
        .orderBy('leadId')
    })
    for (let length = 1; length <= 33; length++) {
      const keys = Array.from({ length }, (_, i) => `k${(i * 7) % 40}`)
      const { rows: found } = await byKeys(t.db, { integrationId: 'integration-4', keys })
      assert.deepEqual(
        found.map((r) => r.leadId),
        keys.map((k) => `lead-${k.slice(1)}`).sort(),
        `a list of ${length}`,
      )
    }
    assert.equal(builds, 7, 'rooms of 1, 2, 4, 8, 16, 32 and 64')
    for (const length of [1, 3, 20]) {
      const keys = Array.from({ length }, (_, i) => `k${i}`)
      const { rows: again } = await byKeys(t.db, { integrationId: 'integration-4', keys })
      assert.equal(again.length, length)
    }
    assert.equal(builds, 7, 'each room compiled once, whatever came between')
    const { rows: some } = await byKeys(t.db, { integrationId: 'integration-4', keys: ['k3', 'k3', 'none'] })
    assert.deepEqual(
      some.map((r) => r.leadId),
      ['lead-3'],
    )
    await assert.rejects(byKeys(t.db, { integrationId: 'integration-4', keys: [] }), /the list keys is empty/)
    const dropped = reusable((db, v: { keys: string[] }) =>
      db
        .deleteFrom('idempotencyKeys')
        .where('integrationId', '=', 'integration-4')
        .where('key', 'in', v.keys),
    )
    const result = await t.db.transaction().execute((tx) => dropped(tx, { keys: ['k0', 'k1', 'k2'] }))
    assert.equal(
      result.numAffectedRows,
      3n,
      'the room a list leaves repeats its last item, and deletes nothing more',
    )
    const left = await t.db
      .selectFrom('idempotencyKeys')
      .select('key')
      .where('integrationId', '=', 'integration-4')
      .execute()
    assert.equal(left.length, 37)
  })

  test('a reusable query whose value steers its shape is refused at its first run', async () => {
    const steered = reusable((db, v: { key: string }) =>
      db
        .selectFrom('idempotencyKeys')
        .select('leadId')
        .where('key', '=', v.key === 'a' ? 'a' : 'b'),
    )
    await assert.rejects(steered(t.db, { key: 'a' }), /key did not reach its parameters/)
  })
})
