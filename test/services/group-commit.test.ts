import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import { checkLead } from '../../src/services/checking.js'
import { GroupCommit } from '../../src/services/group-commit.js'
import { storeLeads, storeRequests } from '../../src/services/intake.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { type Seed, seed } from '../seed.js'

describe(`group commit (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
    await sql`create table gc_rows (v text primary key)`.execute(t.db)
  })
  after(() => t.close())

  /** A checked lead of account A's root, as the lead routes make it, at the test clock's time. */
  const lead = (input: object) => {
    const ctx = {
      integration: s.integrations.all,
      group: s.a.root,
      industry: 'retail' as const,
      blocked: new Set<string>(),
      at: t.clock.now,
    }
    const checked = checkLead({ utmSource: 'web', ...input }, ctx)
    if (!checked.ok) throw new Error(JSON.stringify(checked.refusal))
    return checked.lead
  }

  const rows = async () =>
    (await sql<{ v: string }>`select v from gc_rows order by v`.execute(t.db)).rows.map((r) => r.v)

  test('concurrent callers share one transaction; a failing one reaches only its caller', async () => {
    const calls: string[][] = []
    const committer = new GroupCommit<string, string>(t.db, async (tx, inputs) => {
      calls.push(inputs)
      for (const v of inputs) {
        if (v === 'bad') throw new Error('bad input')
        await sql`insert into gc_rows (v) values (${v})`.execute(tx)
      }
      return inputs.map((v) => `stored ${v}`)
    })
    const good = await Promise.all(['a', 'b', 'c'].map((v) => committer.add(v)))
    assert.deepEqual(good, ['stored a', 'stored b', 'stored c'])
    assert.deepEqual(calls, [['a', 'b', 'c']], 'one call, one transaction, for the three')

    calls.length = 0
    const settled = await Promise.allSettled(['d', 'bad', 'e'].map((v) => committer.add(v)))
    assert.deepEqual(
      settled.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)),
      ['stored d', 'bad input', 'stored e'],
    )
    assert.deepEqual(calls, [['d', 'bad', 'e'], ['d'], ['bad'], ['e']], 'the failed group, then each alone')
    assert.deepEqual(
      await rows(),
      ['a', 'b', 'c', 'd', 'e'],
      'nothing of the failed group was committed twice',
    )
  })

  test('requests stored in one transaction: idempotency keys and provider ids decide as if one by one', async () => {
    const at = t.clock.now
    const keyed = { emails: ['grupo@autos.com.ar'] }
    const ml = { provider: 'mercadolibre', providerLeadId: 'MLA-GC', phones: ['11 5555-1234'] }
    const before = await countLeads()
    // What a group commit runs: the five requests in one transaction.
    const stored = await t.db.transaction().execute((tx) =>
      storeRequests(tx, [
        { leads: [lead(keyed)], idempotencyKey: 'gc-1', at },
        { leads: [lead(keyed)], idempotencyKey: 'gc-1', at },
        { leads: [lead({ ...keyed, firstName: 'Otra' })], idempotencyKey: 'gc-1', at },
        { leads: [lead(ml)], at },
        { leads: [lead({ ...ml, firstName: 'Again' }), lead({ emails: ['solo@autos.com.ar'] })], at },
      ]),
    )
    const [first, again, reused, mlFirst, batch] = stored.map((r) => (r.ok ? r.accepted : r.refusal))
    assert.deepEqual(reused, { kind: 'idempotency-reused' })
    assert.ok(Array.isArray(first) && Array.isArray(again) && Array.isArray(mlFirst) && Array.isArray(batch))
    assert.equal(again[0]?.lead.id, first[0]?.lead.id)
    assert.equal(again[0]?.duplicate, true)
    assert.equal(batch[0]?.lead.id, mlFirst[0]?.lead.id, 'the same provider lead, sent twice in one group')
    assert.equal(batch[0]?.duplicate, true)
    assert.equal(batch[1]?.duplicate, false)
    assert.equal(await countLeads(), before + 3, 'three new leads, each stored once')
    const jobs = await t.db
      .selectFrom('jobs')
      .select('subjectId')
      .where('subjectId', 'in', [first[0]?.lead.id ?? '', mlFirst[0]?.lead.id ?? '', batch[1]?.lead.id ?? ''])
      .execute()
    assert.equal(jobs.length, 3, 'each new lead has its job')
    const replay = await storeLeads(t.db, [lead(keyed)], { idempotencyKey: 'gc-1', at })
    assert.equal(replay.ok && replay.accepted[0]?.lead.id, first[0]?.lead.id, 'the key was saved')
  })

  test('v1 requests store and apply their leads in one transaction; what cannot be applied stays queued', async () => {
    const at = t.clock.now
    const jobOf = (id: string) =>
      t.db.selectFrom('jobs').selectAll().where('subjectId', '=', id).executeTakeFirst()
    const statusOf = async (id: string) =>
      (await t.db.selectFrom('leads').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status

    // An older lead of the same person, stored by v2 and still queued: the v1 lead must wait for it.
    const older = lead({ emails: ['ordem.v1@autos.com.ar'] })
    assert.ok((await storeLeads(t.db, [older], { at })).ok)
    const [fresh, waiting] = [lead({ phones: ['11 5555-7001'] }), lead({ emails: ['ordem.v1@autos.com.ar'] })]
    const stored = await t.db.transaction().execute((tx) =>
      storeRequests(tx, [
        { leads: [fresh], at, applyWith: () => at },
        { leads: [waiting], at, applyWith: () => at },
      ]),
    )
    const [first, second] = stored
    assert.ok(first?.ok && second?.ok)
    assert.equal(first.applied?.get(fresh.id)?.status, 'processed')
    assert.equal(await statusOf(fresh.id), 'processed')
    assert.equal(await jobOf(fresh.id), undefined, 'its job came and went in the same transaction')
    assert.deepEqual(second.applied?.get(waiting.id), {
      status: 'deferred',
      leadId: waiting.id,
      waitingFor: older.id,
      until: at,
    })
    assert.equal(await statusOf(waiting.id), 'queued')
    assert.ok(await jobOf(waiting.id), 'the deferred lead keeps its job')

    // A lead whose group is gone cannot be applied: it is stored and queued all the same.
    const orphan = { ...lead({ phones: ['11 5555-7002'] }), groupId: '000000000000000000000000' }
    const alone = await storeLeads(t.db, [orphan], { at, applyWith: () => at })
    assert.ok(alone.ok)
    assert.equal(alone.applied?.size, 0, 'nothing applied')
    assert.equal(await statusOf(orphan.id), 'queued')
    assert.ok(await jobOf(orphan.id), 'and its job waits for a worker')
  })

  const countLeads = async () =>
    Number(
      (
        await t.db
          .selectFrom('leads')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    )
})
