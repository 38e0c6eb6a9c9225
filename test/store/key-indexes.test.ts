import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { CompiledQuery, QueryId } from 'kysely'
import type { Db } from '../../src/store/database.js'
import { listProspects } from '../../src/store/prospect-search.js'
import { findKeyHolders, findPreviousHolders } from '../../src/store/prospects.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { ingest, type Seed, seed } from '../seed.js'

/** The database, and every query run through it compiled as the engine receives it. */
function recording(db: Db): { db: Db; queries: CompiledQuery[] } {
  const queries: CompiledQuery[] = []
  const recorder = db.withPlugin({
    transformQuery: ({ node, queryId }) => {
      queries.push(db.getExecutor().compileQuery(node, queryId))
      return node
    },
    transformResult: async ({ result }) => result,
  })
  // A reusable query is compiled once and run as compiled, past every plugin's transformQuery.
  const execute = recorder.executeQuery.bind(recorder)
  recorder.executeQuery = ((query: CompiledQuery, queryId?: QueryId) => {
    queries.push(query)
    return execute(query, queryId)
  }) as typeof recorder.executeQuery
  return { db: recorder, queries }
}

describe(`prospect keys are found through the active index and the inactive one (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  let kept: { prospectId: string; phone: string; email: string }
  let archived: { prospectId: string; phone: string }

  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
    const keysOf = (prospectId: string) =>
      t.db.selectFrom('prospectKeys').selectAll().where('prospectId', '=', prospectId).execute()
    const a = await ingest(t.db, s.integrations.all, s.a.root, {
      utmSource: 'test',
      phones: ['+54 9 11 4000-1111'],
      emails: ['keys.kept@correo.com.ar'],
    })
    const b = await ingest(t.db, s.integrations.all, s.a.root, {
      utmSource: 'test',
      phones: ['+54 9 11 4000-2222'],
    })
    const aKeys = await keysOf(a.prospectId)
    const bKeys = await keysOf(b.prospectId)
    kept = {
      prospectId: a.prospectId,
      phone: aKeys.find((k) => k.keyType === 'phone')?.keyValue as string,
      email: aKeys.find((k) => k.keyType === 'email')?.keyValue as string,
    }
    archived = { prospectId: b.prospectId, phone: bKeys[0]?.keyValue as string }
    assert.ok(kept.phone && kept.email && archived.phone, 'both prospects hold their keys')
    // Archived with its key released, as test/services/identity.test.ts sets one up (in the
    // services only DELETE releases keys today, and every lookup here leaves deleted prospects out).
    await t.db.updateTable('prospects').set({ status: 'archived' }).where('id', '=', b.prospectId).execute()
    await t.db.updateTable('prospectKeys').set({ active: 0 }).where('prospectId', '=', b.prospectId).execute()
  })
  after(() => t.close())

  test('active holders, inactive holders and the key search each find the right prospect', async () => {
    const accountId = s.a.account.id
    const keys = [
      { type: 'phone' as const, value: kept.phone },
      { type: 'email' as const, value: kept.email },
      { type: 'phone' as const, value: archived.phone },
    ]
    const active = await findKeyHolders(t.db, accountId, keys)
    assert.deepEqual(active.map((h) => [h.type, h.value, h.prospectId]).sort(), [
      ['email', kept.email, kept.prospectId],
      ['phone', kept.phone, kept.prospectId],
    ])
    // A phone key's value looked up as an email is not the same key.
    assert.deepEqual(await findKeyHolders(t.db, accountId, [{ type: 'email', value: kept.phone }]), [])
    assert.deepEqual(await findPreviousHolders(t.db, accountId, keys), [
      { type: 'phone', value: archived.phone, prospectId: archived.prospectId },
    ])
    // Another account holds none of them.
    assert.deepEqual(await findKeyHolders(t.db, s.b.account.id, keys), [])

    const search = (filter: { phoneKey?: string; email?: string }) =>
      listProspects(t.db, {
        accountId,
        rootGroupId: s.a.root.id,
        limit: 10,
        ...(filter.phoneKey ? { phoneKey: filter.phoneKey } : {}),
        ...(filter.email ? { search: { kind: 'email', key: filter.email } } : {}),
      }).then((found) => found.map((p) => p.id))
    assert.deepEqual(await search({ phoneKey: kept.phone }), [kept.prospectId])
    assert.deepEqual(await search({ email: kept.email }), [kept.prospectId])
    assert.deepEqual(await search({ phoneKey: archived.phone }), [archived.prospectId])
  })

  // SQLite only: PostgreSQL's planner reads a table this small whole whatever its indexes, so a
  // plan there would say nothing about a million prospects (BENCHMARKS.md §8 measures that).
  test('each lookup by key seeks an index of the keys, never reads the table through', {
    skip: ENGINE !== 'sqlite',
  }, async () => {
    const accountId = s.a.account.id
    const keys = [
      { type: 'phone' as const, value: kept.phone },
      { type: 'email' as const, value: kept.email },
    ]
    /** What the engine's planner does with prospect_keys in each query `lookup` runs (subqueries alone too). */
    const plansOf = async (lookup: (db: Db) => Promise<unknown>) => {
      const { db, queries } = recording(t.db)
      await lookup(db)
      const plans: string[] = []
      // A reusable query's first compile is seen with stand-ins for its values; it is seen again when it runs.
      const runnable = queries.filter((q) => q.parameters.every((p) => typeof p !== 'object' || p === null))
      for (const query of runnable.filter((q) => q.sql.includes('"prospect_keys"'))) {
        const { rows } = await t.db.executeQuery<{ detail: string }>({
          ...query,
          sql: `explain query plan ${query.sql}`,
        })
        plans.push(...rows.map((r) => r.detail).filter((d) => d.includes('prospect_keys')))
      }
      return [...new Set(plans)].sort()
    }
    const ACTIVE =
      'SEARCH prospect_keys USING INDEX prospect_keys_active (account_id=? AND key_type=? AND key_value=?)'
    const INACTIVE = 'SEARCH prospect_keys USING INDEX prospect_keys_inactive (account_id=? AND key_value=?)'
    assert.deepEqual(await plansOf((db) => findKeyHolders(db, accountId, keys)), [ACTIVE])
    assert.deepEqual(await plansOf((db) => findPreviousHolders(db, accountId, keys)), [INACTIVE])
    assert.deepEqual(
      await plansOf((db) =>
        listProspects(db, { accountId, rootGroupId: s.a.root.id, limit: 10, phoneKey: kept.phone }),
      ),
      [ACTIVE, INACTIVE],
    )
  })
})
