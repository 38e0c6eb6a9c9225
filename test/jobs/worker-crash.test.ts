import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { enqueueJobs } from '../../src/jobs/queue.js'
import { LeadWorker } from '../../src/jobs/worker.js'
import { processLead } from '../../src/services/processing.js'
import type { Db } from '../../src/store/database.js'
import { type Integration, listIntegrations } from '../../src/store/integrations.js'
import { findLead } from '../../src/store/leads.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { type Seed, seed } from '../seed.js'
import { leadsOf, makePeople, type PlannedLead, seededRandom, shuffle, storeUnprocessed } from './people.js'
import { progressOf, spawnWorker, stopWorkers, type WorkerProcess, waitUntil } from './workers.js'

/**
 * operations.md §4 and identity.md §6: a worker that dies holding jobs frees them when its lease
 * runs out; delivery is at-least-once, the effect exactly-once.
 */
async function setUp(): Promise<{ t: TestContext; s: Seed; integration: Integration }> {
  const t = await createTestApp()
  const s = await seed(t.db, t.secretKey)
  const integration = (await listIntegrations(t.db, s.b.account.id))[0]
  assert.ok(integration, 'account B has an integration')
  return { t, s, integration }
}

/** The note comments recorded per lead (interactions written from a lead's `history`). */
async function commentsByLead(db: Db, leadIds: string[]): Promise<Map<string, string[]>> {
  const rows = await db
    .selectFrom('interactions')
    .select(['leadId', 'output'])
    .where('leadId', 'in', leadIds)
    .execute()
  const comments = new Map<string, string[]>()
  for (const row of rows) {
    const comment = (JSON.parse(row.output) as { comment?: string }).comment
    if (row.leadId && comment) comments.set(row.leadId, [...(comments.get(row.leadId) ?? []), comment])
  }
  return comments
}

async function processedEvents(db: Db, leadIds: string[]): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('events')
    .select(['subjectId', (eb) => eb.fn.countAll<number>().as('n')])
    .where('topic', '=', 'leads')
    .where('type', '=', 'processed')
    .where('subjectId', 'in', leadIds)
    .groupBy('subjectId')
    .execute()
  return new Map(rows.map((r) => [r.subjectId, Number(r.n)]))
}

describe(`a worker killed mid-batch (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  let integration: Integration
  const workers: WorkerProcess[] = []
  before(async () => {
    ;({ t, s, integration } = await setUp())
  })
  after(async () => {
    await stopWorkers(workers)
    await t?.close()
  })

  test('its jobs are taken over after the lease and every lead is applied exactly once', {
    timeout: 120_000,
  }, async (tc) => {
    // 600 leads: three claims of a worker's default size, so it dies holding one with more to come.
    const people = makePeople(60, seededRandom(31))
    const planned = shuffle(
      people.flatMap((p) => leadsOf(p, 10, { noteEvery: 3 })),
      seededRandom(17),
    )
    const ids = await storeUnprocessed(
      t.db,
      integration,
      s.b.root,
      planned.map((l) => l.input),
    )
    const baseline = (await progressOf(t.db)).processed
    const env = { VENTAS_WORKER_LEASE_MS: '1500' }

    const first = spawnWorker(t.database, env)
    workers.push(first)
    // A batch commits at once, so wait for a tenth applied and the next batch claimed: killed then,
    // the worker dies holding leases.
    const holding = async () =>
      (await t.db.selectFrom('jobs').select('id').where('lockedBy', 'is not', null).executeTakeFirst()) !==
      undefined
    await waitUntil(
      'the first worker has processed a tenth of the leads and holds its next batch',
      async () => (await progressOf(t.db)).processed >= baseline + ids.length / 10 && (await holding()),
      { timeoutMs: 30_000, workers: [first], everyMs: 5 },
    )
    first.child.kill('SIGKILL')
    assert.equal(await first.exited, 'SIGKILL')
    const left = await progressOf(t.db)
    assert.ok(left.jobs > 0, 'the worker died with jobs left; if not, store a larger batch')
    assert.ok(left.processed < left.leads)
    const leased = await t.db
      .selectFrom('jobs')
      .select(['subjectId', 'lockedUntil'])
      .where('lockedBy', 'is not', null)
      .execute()
    assert.ok(leased.length > 0, 'the dead worker still holds leases')
    tc.diagnostic(
      `killed after ${left.processed - baseline} of ${ids.length} leads; ${left.jobs} jobs left, ${leased.length} leased`,
    )

    const second = spawnWorker(t.database, env)
    workers.push(second)
    await waitUntil(
      'the second worker has emptied the queue',
      async () => {
        const p = await progressOf(t.db)
        return p.jobs === 0 && p.processed === p.leads
      },
      { timeoutMs: 60_000, workers: [second] },
    )
    second.child.kill('SIGTERM')
    assert.equal(await second.exited, 'exit 0', 'SIGTERM stops a worker cleanly')

    const leads = await t.db
      .selectFrom('leads')
      .select(['id', 'prospectId', 'processedAt'])
      .where('id', 'in', ids)
      .execute()
    const processedAt = new Map(leads.map((l) => [l.id, Number(l.processedAt)]))
    assert.deepEqual(
      leased.filter((job) => (processedAt.get(job.subjectId) ?? 0) < Number(job.lockedUntil)),
      [],
      "the dead worker's jobs waited for its lease to run out",
    )
    const active = new Set(
      (
        await t.db
          .selectFrom('prospects')
          .select('id')
          .where('accountId', '=', s.b.account.id)
          .where('mergedInto', 'is', null)
          .execute()
      ).map((p) => p.id),
    )
    assert.equal(active.size, people.length, 'one prospect per person, no duplicates')
    const prospectOf = new Map(leads.map((l) => [l.id, l.prospectId]))
    const byPerson = new Map<number, Set<string | null>>()
    for (const [i, id] of ids.entries()) {
      const person = (planned[i] as PlannedLead).person.index
      byPerson.set(person, (byPerson.get(person) ?? new Set()).add(prospectOf.get(id) ?? null))
    }
    for (const [person, held] of byPerson) {
      assert.equal(held.size, 1, `person ${person}'s leads point at one prospect`)
      assert.ok(active.has([...held][0] as string), `person ${person}'s prospect is active`)
    }
    const prospectsOfPeople = new Set([...byPerson.values()].map((held) => [...held][0]))
    assert.equal(prospectsOfPeople.size, people.length, 'no two people share a prospect')

    const events = await processedEvents(t.db, ids)
    assert.deepEqual(
      ids.filter((id) => events.get(id) !== 1),
      [],
      'one leads.processed event per lead',
    )
    const comments = await commentsByLead(t.db, ids)
    for (const [i, id] of ids.entries()) {
      const note = (planned[i] as PlannedLead).note
      assert.deepEqual(comments.get(id) ?? [], note ? [note] : [], `lead ${id}'s history, recorded once`)
    }
    assert.ok(
      planned.filter((l) => l.note).length >= 100,
      'enough leads carry a note for the check to mean something',
    )
  })
})

describe(`leases and redelivery in one process (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  let integration: Integration
  const person = makePeople(1, seededRandom(404))[0] as PlannedLead['person']
  before(async () => {
    ;({ t, s, integration } = await setUp())
  })
  after(() => t?.close())

  test('a job whose lease expired is claimed by another worker; a live lease is not', async () => {
    const [input] = leadsOf(person, 1).map((l) => l.input)
    const [id] = await storeUnprocessed(t.db, integration, s.b.root, [input as PlannedLead['input']])
    assert.ok(id)
    const holdBy = (lockedUntil: number) =>
      t.db
        .updateTable('jobs')
        .set({ lockedBy: 'gone-host:4242:dead01', lockedUntil, attempts: 1 })
        .where('subjectId', '=', id)
        .execute()
    const worker = new LeadWorker(t.db, { leaseMs: 1500 })

    await holdBy(Date.now() + 60_000)
    assert.equal(await worker.runOnce(), 0, 'a job under a live lease is left alone')
    assert.equal((await findLead(t.db, id))?.status, 'queued')

    await holdBy(Date.now() - 1)
    assert.equal(await worker.runOnce(), 1)
    const lead = await findLead(t.db, id)
    assert.equal(lead?.status, 'processed')
    assert.ok(lead?.prospectId)
    const jobs = await t.db.selectFrom('jobs').select('id').where('subjectId', '=', id).execute()
    assert.deepEqual(jobs, [])
  })

  test('a lead processed twice, or its job delivered again, has its effect once', async () => {
    // The phone-only lead comes first; the second lead (phone, email and a note) joins its prospect.
    const [withNote, phoneOnly] = leadsOf(person, 2, { noteEvery: 2 }).map((l) => l.input)
    const [earlier, id] = await storeUnprocessed(t.db, integration, s.b.root, [
      phoneOnly as PlannedLead['input'],
      withNote as PlannedLead['input'],
    ])
    assert.ok(earlier && id)
    await processLead(t.db, earlier, Date.now)
    const once = await processLead(t.db, id, Date.now)
    assert.equal(once.status, 'processed')
    assert.ok(once.status === 'processed' && once.merged, 'the second lead joins the first one’s prospect')

    const effects = async () => ({
      prospects: await t.db
        .selectFrom('prospects')
        .selectAll()
        .where('accountId', '=', s.b.account.id)
        .orderBy('id')
        .execute(),
      leads: await t.db
        .selectFrom('leads')
        .selectAll()
        .where('accountId', '=', s.b.account.id)
        .orderBy('id')
        .execute(),
      events: await t.db.selectFrom('events').select(['id', 'type']).orderBy('id').execute(),
      interactions: await t.db.selectFrom('interactions').selectAll().orderBy('id').execute(),
      merges: await t.db.selectFrom('merges').selectAll().orderBy('id').execute(),
    })
    const before = await effects()
    assert.deepEqual((await commentsByLead(t.db, [id])).get(id), [`note ${person.index}.0`])

    assert.deepEqual(await processLead(t.db, id, Date.now), once, 'the same outcome, applied again')
    await enqueueJobs(t.db, 'lead', [id], Date.now())
    assert.equal(await new LeadWorker(t.db).runOnce(), 1, 'the redelivered job is taken')
    assert.deepEqual(await t.db.selectFrom('jobs').select('id').execute(), [], 'and removed')

    assert.deepEqual(await effects(), before, 'nothing changed: no prospect, event, interaction or merge')
    assert.deepEqual((await processedEvents(t.db, [id])).get(id), 1)
  })
})
