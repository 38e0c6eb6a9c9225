import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { enqueueJobs } from '../../src/jobs/queue.js'
import { LeadWorker } from '../../src/jobs/worker.js'
import { type AppliedResult, processLeads } from '../../src/services/processing.js'
import { type Integration, listIntegrations } from '../../src/store/integrations.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { type Seed, seed } from '../seed.js'
import { storeUnprocessed } from './people.js'

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
})
