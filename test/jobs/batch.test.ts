import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Result } from '../../src/domain/result.js'
import { ALL_SCOPES } from '../../src/domain/scopes.js'
import { enqueueJobs } from '../../src/jobs/queue.js'
import { LeadWorker } from '../../src/jobs/worker.js'
import { createIntegration } from '../../src/services/access.js'
import { createGroup, createUser } from '../../src/services/directory.js'
import { type AppliedResult, LEADS_PER_TRANSACTION, processLeads } from '../../src/services/processing.js'
import type { Group } from '../../src/store/groups.js'
import { type Integration, listIntegrations } from '../../src/store/integrations.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { type Seed, seed } from '../seed.js'
import { storeUnprocessed } from './people.js'

function must<T>(result: Result<T>): T {
  if (!result.ok) throw new Error(result.message)
  return result.value
}

/** A claimed batch applied in shared transactions: what commits together, what runs again alone. */
describe(`lead batches (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  let integration: Integration
  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
    integration = (await listIntegrations(t.db, s.b.account.id))[0] as Integration
  })
  after(() => t.close())

  /** A queued lead whose stored body no longer parses: applying it throws. */
  async function brokenLead(id: string) {
    await t.db
      .insertInto('leads')
      .values({
        id,
        accountId: s.b.account.id,
        groupId: s.b.root.id,
        integrationId: integration.id,
        industry: 'retail',
        receivedAt: t.clock.now,
        status: 'queued',
        merged: 0,
        body: '{"utmSource": "web", "phones": [',
        requestHash: 'x',
      })
      .execute()
    await enqueueJobs(t.db, 'lead', [id], t.clock.now)
  }

  const statusOf = async (id: string) =>
    (await t.db.selectFrom('leads').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status

  test('the good leads commit together; a failing one is rolled back alone; a lead behind its older one waits', async () => {
    const [older, newer, other] = (await storeUnprocessed(t.db, integration, s.b.root, [
      { utmSource: 'web', firstName: 'Rita', phones: ['+55 21 98888-1001'] },
      { utmSource: 'web', firstName: 'Rita', phones: ['(21) 98888-1001'] },
      { utmSource: 'web', firstName: 'Caio', phones: ['+55 21 98888-2002'] },
    ])) as [string, string, string]
    const broken = 'b0000000000000000000000a'
    await brokenLead(broken)
    const committed: string[][] = []
    const results = await processLeads(
      t.db,
      [newer, broken, older, other],
      () => t.clock.now,
      (batch) => committed.push(batch.map((r) => r.leadId)),
    )
    assert.deepEqual(
      [newer, broken, older, other].map((id) => results.get(id)?.status),
      ['deferred', undefined, 'processed', 'processed'],
    )
    assert.deepEqual(committed, [[newer, older, other]], 'one transaction, reported once it committed')
    assert.equal(await statusOf(broken), 'queued', 'the failing lead was rolled back to its savepoint')
    assert.equal(await statusOf(newer), 'queued')
    const jobs = await t.db
      .selectFrom('jobs')
      .select('subjectId')
      .where('subjectId', 'in', [newer, broken])
      .execute()
    assert.equal(jobs.length, 2, 'the deferred and the failed lead keep their jobs')
  })

  test('a batch past one transaction commits in several, each reported as it commits; a lead waits for an older one in a later transaction', async () => {
    const [older, ...rest] = await storeUnprocessed(t.db, integration, s.b.root, [
      { utmSource: 'web', firstName: 'Lia', phones: ['+55 41 98888-3003'] },
      ...Array.from({ length: LEADS_PER_TRANSACTION + 9 }, (_, i) => ({
        utmSource: 'web',
        phones: [`+55 41 9${String(70_000_000 + i)}`],
      })),
      { utmSource: 'web', firstName: 'Lia', phones: ['(41) 98888-3003'] },
    ])
    const newer = rest.pop() as string
    // The newer lead first, its older one last: they fall in the first and the second transaction.
    const order = [newer, ...rest, older as string]
    const committed: string[][] = []
    const results = await processLeads(
      t.db,
      order,
      () => t.clock.now,
      (batch) => committed.push(batch.map((r) => r.leadId)),
    )
    assert.deepEqual(
      committed.map((c) => c.length),
      [LEADS_PER_TRANSACTION, 11],
      'two transactions, each reported once it committed',
    )
    assert.deepEqual(committed.flat(), order)
    assert.equal(results.get(newer)?.status, 'deferred', 'its older lead was still queued')
    assert.equal(results.get(older as string)?.status, 'processed')
    assert.equal(await statusOf(newer), 'queued')
    assert.ok(rest.every((id) => results.get(id)?.status === 'processed'))
  })

  test('a worker reports each lead once, whether applied in the batch or run again alone', async () => {
    await t.db.deleteFrom('jobs').execute()
    const ids = await storeUnprocessed(
      t.db,
      integration,
      s.b.root,
      Array.from({ length: 60 }, (_, i) => ({
        utmSource: 'web',
        phones: [`+55 31 97777-${String(1000 + i)}`],
      })),
    )
    const broken = 'b0000000000000000000000b'
    await brokenLead(broken)
    const reported: AppliedResult[] = []
    // Stored at the real time: a clock a minute ahead finds every job due.
    const worker = new LeadWorker(t.db, {
      now: () => Date.now() + 60_000,
      onProcessed: (r) => reported.push(r),
    })
    assert.equal(await worker.runOnce(), 61)
    assert.deepEqual(
      reported.map((r) => r.leadId).sort(),
      [...ids].sort(),
      'each good lead once, the broken one never',
    )
    assert.ok(reported.every((r) => r.status === 'processed'))
    const job = await t.db
      .selectFrom('jobs')
      .selectAll()
      .where('subjectId', '=', broken)
      .executeTakeFirstOrThrow()
    assert.equal(job.attempts, 1)
    assert.match(job.lastError ?? '', /SyntaxError|JSON/, 'run again alone, its failure recorded')
  })

  test('a running worker that took less than a batch sleeps; a lead stored while it worked ends the sleep', async () => {
    await t.db.deleteFrom('jobs').execute()
    const lead = (i: number) => ({ utmSource: 'web', phones: [`+55 31 96666-${String(1000 + i)}`] })
    const processed: string[] = []
    let second: string[] = []
    /** Stores the second lead (and is woken by it) after its first claim, before it decides to sleep. */
    let claims = 0
    class Busy extends LeadWorker {
      override async runOnce(): Promise<number> {
        claims += 1
        const handled = await super.runOnce()
        if (second.length === 0) {
          second = await storeUnprocessed(t.db, integration, s.b.root, [lead(2)])
          this.nudge()
        }
        return handled
      }
    }
    // A poll a minute away: only the wake of the second lead can make the worker claim it.
    const worker = new Busy(t.db, {
      now: () => Date.now() + 60_000,
      pollMs: 60_000,
      onProcessed: (r) => processed.push(r.leadId),
    })
    const [first] = await storeUnprocessed(t.db, integration, s.b.root, [lead(1)])
    worker.start()
    const deadline = Date.now() + 10_000
    while (processed.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    await new Promise((r) => setTimeout(r, 100))
    await worker.stop()
    assert.deepEqual(processed, [first, ...second], 'the second lead did not wait for the poll')
    assert.equal(
      claims,
      2,
      'one claim per lead: none again at once after a claim that took less than a batch',
    )
  })

  test('leads later in one transaction merge prospects made or changed earlier in it, as one lead at a time would', async () => {
    const note = (content: string) => [{ type: 'note' as const, content }]
    // Before the batch: W (older) holds a phone, Z (newer) an email; the batch proves them one person.
    const [w, z] = (await storeUnprocessed(t.db, integration, s.b.root, [
      { utmSource: 'web', firstName: 'Wanda', phones: ['+55 11 95555-0001'] },
      { utmSource: 'web', lastName: 'Zanetti', emails: ['wanda@correio.com.br'], history: note('z') },
    ])) as [string, string]
    const before = await processLeads(t.db, [w, z], () => t.clock.now)
    const prospectOf = (id: string) => {
      const result = before.get(id) ?? batch.get(id)
      assert.equal(result?.status, 'processed', id)
      return (result as { prospectId: string }).prospectId
    }
    let batch = new Map()
    const ids = await storeUnprocessed(t.db, integration, s.b.root, [
      // X is made, then Y, then a lead shows they are one person: Y merges into X.
      { utmSource: 'web', firstName: 'Xavier', phones: ['+55 11 95555-0002'], history: note('x') },
      { utmSource: 'web', emails: ['xavier@correio.com.br'], locality: 'Santos', history: note('y') },
      { utmSource: 'web', phones: ['(11) 95555-0002'], emails: ['XAVIER@correio.com.br'] },
      { utmSource: 'web', emails: ['xavier@correio.com.br'] },
      // The stored pair: Z merges into W, and a later lead with Z's email finds W.
      { utmSource: 'web', phones: ['5511955550001'], emails: ['wanda@correio.com.br'] },
      { utmSource: 'web', emails: ['Wanda@Correio.com.br'], history: note('w') },
    ])
    const committed: number[] = []
    batch = await processLeads(
      t.db,
      ids,
      () => t.clock.now,
      (r) => committed.push(r.length),
    )
    assert.deepEqual(committed, [6], 'one transaction')
    const [x, y, xy, x2, wz, w2] = ids as [string, string, string, string, string, string]
    assert.deepEqual(
      [x, y, xy, x2, wz, w2].map((id) => (batch.get(id) as { merged: boolean }).merged),
      [false, false, true, true, true, true],
    )
    assert.deepEqual([xy, x2].map(prospectOf), [prospectOf(x), prospectOf(x)])
    assert.deepEqual([wz, w2].map(prospectOf), [prospectOf(w), prospectOf(w)])

    const survivors = [prospectOf(x), prospectOf(w)]
    const leads = await t.db
      .selectFrom('leads')
      .select(['id', 'prospectId'])
      .where('id', 'in', [w, z, ...ids])
      .execute()
    for (const lead of leads)
      assert.ok(survivors.includes(lead.prospectId as string), `lead ${lead.id} is on a survivor`)
    assert.equal(leads.find((l) => l.id === y)?.prospectId, prospectOf(x), 'Y’s lead moved to X')
    assert.equal(leads.find((l) => l.id === z)?.prospectId, prospectOf(w), 'Z’s stored lead moved to W')

    const losers = await t.db
      .selectFrom('prospects')
      .select(['id', 'mergedInto'])
      .where('id', 'in', [prospectOf(y), prospectOf(z)])
      .orderBy('id')
      .execute()
    assert.deepEqual(
      losers.map((p) => p.mergedInto).sort(),
      [prospectOf(x), prospectOf(w)].sort(),
      'Y and Z are tombstones',
    )
    const keys = await t.db
      .selectFrom('prospectKeys')
      .select(['keyValue', 'prospectId'])
      .where('accountId', '=', s.b.account.id)
      .where('keyValue', 'in', [
        '+5511955550001',
        '+5511955550002',
        'wanda@correio.com.br',
        'xavier@correio.com.br',
      ])
      .where('active', '=', 1)
      .orderBy('keyValue')
      .execute()
    assert.deepEqual(
      keys.map((k) => [k.keyValue, k.prospectId]),
      [
        ['+5511955550001', prospectOf(w)],
        ['+5511955550002', prospectOf(x)],
        ['wanda@correio.com.br', prospectOf(w)],
        ['xavier@correio.com.br', prospectOf(x)],
      ],
      'one active row per key, each on its survivor',
    )
    const notes = await t.db
      .selectFrom('interactions')
      .select(['prospectId', 'output'])
      .where('leadId', 'in', [z, x, y, w2])
      .execute()
    assert.deepEqual(
      notes.map((n) => [JSON.parse(n.output).comment, n.prospectId]).sort(),
      [
        ['w', prospectOf(w)],
        ['x', prospectOf(x)],
        ['y', prospectOf(x)],
        ['z', prospectOf(w)],
      ],
      'interactions follow their prospect to its survivor',
    )
    const x1 = await t.db
      .selectFrom('prospects')
      .select(['firstName', 'details'])
      .where('id', '=', prospectOf(x))
      .executeTakeFirstOrThrow()
    assert.equal(x1.firstName, 'Xavier')
    assert.equal(JSON.parse(x1.details).locality, 'Santos', 'X filled its empty fields from Y')
  })

  test('two batches routing round robin in two groups, in crossing order, both apply every lead', async () => {
    // Without the turns locked up front, PostgreSQL deadlocks: each batch holds one group's turn
    // and waits for the other's, and the victim's lead drops out of its batch.
    const groups: { group: Group; integration: Integration }[] = []
    for (const name of ['Rodízio A', 'Rodízio B']) {
      const group = must(await createGroup(t.db, s.b.account.id, { name, distribution: 'roundRobin' }))
      must(
        await createUser(t.db, s.b.account.id, {
          email: `agente.${group.id}@lojaazul.com.br`,
          firstName: 'Agente',
          lastName: name,
          profile: 'agent',
          groupIds: [group.id],
          working: true,
        }),
      )
      const access = must(
        await createIntegration(
          t.db,
          t.secretKey,
          { accountId: s.b.account.id, groupId: group.id, name, scopes: ALL_SCOPES },
          'test',
        ),
      )
      groups.push({ group, integration: access.integration })
    }
    const leadIn = async (i: number, phone: string) => {
      const { group, integration } = groups[i] as (typeof groups)[number]
      const [id] = await storeUnprocessed(t.db, integration, group, [{ utmSource: 'web', phones: [phone] }])
      return id as string
    }
    const a1 = await leadIn(0, '+55 11 96666-0001')
    const a2 = await leadIn(1, '+55 11 96666-0002')
    const b1 = await leadIn(1, '+55 11 96666-0003')
    const b2 = await leadIn(0, '+55 11 96666-0004')
    const [first, second] = await Promise.all([
      processLeads(t.db, [a1, a2], () => t.clock.now),
      processLeads(t.db, [b1, b2], () => t.clock.now),
    ])
    assert.deepEqual(
      [first.get(a1)?.status, first.get(a2)?.status, second.get(b1)?.status, second.get(b2)?.status],
      ['processed', 'processed', 'processed', 'processed'],
    )
  })
})
