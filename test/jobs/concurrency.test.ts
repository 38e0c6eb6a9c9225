import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import type { Integration } from '../../src/store/integrations.js'
import { listIntegrations } from '../../src/store/integrations.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { type Seed, seed } from '../seed.js'
import {
  leadsOf,
  makePeople,
  NINTH_DIGITLESS,
  type PlannedLead,
  seededRandom,
  shuffle,
  storeUnprocessed,
} from './people.js'
import { progressOf, spawnWorker, stopWorkers, type WorkerProcess, waitUntil } from './workers.js'

/**
 * identity.md §6: many leads over few shared contacts, several worker processes on one PostgreSQL
 * database, and still exactly one prospect per person — enforced by the active-key unique index
 * and the retried transaction, not by luck.
 */
const PEOPLE = 200
const LEADS_PER_PERSON = 10
const WORKERS = 4

describe(`four worker processes on one queue (${ENGINE})`, {
  skip: ENGINE !== 'postgres' && 'PostgreSQL only: SQLite serves one process at a time',
}, () => {
  let t: TestContext
  let s: Seed
  let integration: Integration
  const workers: WorkerProcess[] = []
  const planned: PlannedLead[] = shuffle(
    makePeople(PEOPLE, seededRandom(20240611)).flatMap((p) => leadsOf(p, LEADS_PER_PERSON)),
    seededRandom(7),
  )
  const personOf = new Map<string, number>()

  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
    const found = (await listIntegrations(t.db, s.b.account.id))[0]
    assert.ok(found, 'account B has an integration')
    integration = found
  })
  after(async () => {
    await stopWorkers(workers)
    await t?.close()
  })

  test('the generated leads write each phone in every format, the ninth-digit-less one included', () => {
    const phones = planned.flatMap((l) => l.input.phones ?? [])
    assert.equal(planned.length, PEOPLE * LEADS_PER_PERSON)
    for (const pattern of [
      /^\+55 \d\d 9\d{4}-/,
      /^\(\d\d\) /,
      /^55\d{11}$/,
      /^0055 /,
      /@s\.whatsapp\.net$/,
      /^tel:/,
    ])
      assert.ok(
        phones.some((p) => pattern.test(p)),
        `some lead writes its phone like ${pattern}`,
      )
    const ninthless = planned.filter(
      (l) => l.input.phones?.[0] === NINTH_DIGITLESS(l.person.ddd, l.person.eight),
    )
    assert.ok(ninthless.length > 100, `${ninthless.length} leads without the ninth digit`)
    assert.ok(planned.some((l) => !l.input.phones) && planned.some((l) => !l.input.emails))
  })

  test('2,000 leads of 200 people end as exactly one prospect per person', {
    timeout: 240_000,
  }, async (tc) => {
    const ids = await storeUnprocessed(
      t.db,
      integration,
      s.b.root,
      planned.map((l) => l.input),
    )
    for (const [i, id] of ids.entries()) personOf.set(id, (planned[i] as PlannedLead).person.index)
    assert.equal((await progressOf(t.db)).jobs, PEOPLE * LEADS_PER_PERSON)

    const began = performance.now()
    for (let i = 0; i < WORKERS; i++)
      workers.push(spawnWorker(t.database, { VENTAS_WORKER_LEASE_MS: '30000' }))
    await waitUntil(
      'every lead is processed and the queue is empty',
      async () => {
        const p = await progressOf(t.db)
        return p.jobs === 0 && p.processed === p.leads
      },
      { timeoutMs: 120_000, workers },
    )
    const seconds = (performance.now() - began) / 1000
    const span = await t.db
      .selectFrom('leads')
      .select((eb) => [eb.fn.min('processedAt').as('first'), eb.fn.max('processedAt').as('last')])
      .where('id', 'in', ids)
      .executeTakeFirstOrThrow()
    const busy = (Number(span.last) - Number(span.first)) / 1000
    tc.diagnostic(
      `${ids.length} leads, ${WORKERS} workers: ${Math.round(ids.length / seconds)} leads/s over ${seconds.toFixed(1)} s ` +
        `including process start; ${Math.round(ids.length / busy)} leads/s from first to last lead processed`,
    )

    const leads = await t.db
      .selectFrom('leads')
      .select(['id', 'status', 'prospectId', 'processedAt'])
      .where('accountId', '=', s.b.account.id)
      .execute()
    assert.equal(leads.length, ids.length)
    const prospects = await t.db
      .selectFrom('prospects')
      .select(['id', 'mergedInto', 'phones', 'emails'])
      .where('accountId', '=', s.b.account.id)
      .execute()
    const active = new Map(prospects.filter((p) => p.mergedInto === null).map((p) => [p.id, p]))
    assert.equal(active.size, PEOPLE, 'one active prospect per person')

    const prospectsOfPerson = new Map<number, Set<string>>()
    for (const lead of leads) {
      assert.equal(lead.status, 'processed', `lead ${lead.id}`)
      assert.ok(
        lead.prospectId && active.has(lead.prospectId),
        `lead ${lead.id} points at an active prospect`,
      )
      const person = personOf.get(lead.id) as number
      prospectsOfPerson.set(person, (prospectsOfPerson.get(person) ?? new Set()).add(lead.prospectId))
    }
    const personOfProspect = new Map<string, number>()
    for (const [person, held] of prospectsOfPerson) {
      assert.equal(held.size, 1, `person ${person}'s leads point at ${[...held].join(', ')}`)
      const prospectId = [...held][0] as string
      const other = personOfProspect.get(prospectId)
      assert.equal(other, undefined, `people ${other} and ${person} share prospect ${prospectId}`)
      personOfProspect.set(prospectId, person)
    }

    const perProspect = await t.db
      .selectFrom('leads')
      .innerJoin('prospects', 'prospects.id', 'leads.prospectId')
      .select(['leads.prospectId', (eb) => eb.fn.countAll<number>().as('n')])
      .where('prospects.accountId', '=', s.b.account.id)
      .where('prospects.mergedInto', 'is', null)
      .groupBy('leads.prospectId')
      .execute()
    assert.equal(perProspect.length, PEOPLE)
    assert.equal(
      perProspect.reduce((sum, row) => sum + Number(row.n), 0),
      ids.length,
    )

    const people = new Map(planned.map((l) => [l.person.index, l.person]))
    for (const [id, prospect] of active) {
      const person = people.get(personOfProspect.get(id) as number)
      const phones = JSON.parse(prospect.phones) as { value: string; key: string }[]
      const emails = JSON.parse(prospect.emails) as { value: string; key: string }[]
      assert.deepEqual(
        phones.map((p) => p.key),
        [person?.phoneKey],
        `prospect ${id} holds one phone, its ninth-digit variants folded`,
      )
      assert.deepEqual(
        emails.map((e) => e.value),
        [person?.email],
      )
    }

    const doubled = await t.db
      .selectFrom('prospectKeys')
      .select(['keyType', 'keyValue', (eb) => eb.fn.countAll<number>().as('n')])
      .where('accountId', '=', s.b.account.id)
      .where('active', '=', 1)
      .groupBy(['keyType', 'keyValue'])
      .having(sql`count(*)`, '>', 1)
      .execute()
    assert.deepEqual(doubled, [], 'no active key is held twice')
    const keys = await t.db
      .selectFrom('prospectKeys')
      .select(['prospectId'])
      .where('accountId', '=', s.b.account.id)
      .where('active', '=', 1)
      .execute()
    assert.equal(keys.length, PEOPLE * 2, 'one phone key and one email key per person')
    assert.ok(
      keys.every((k) => active.has(k.prospectId)),
      'only active prospects hold active keys',
    )

    const events = await t.db
      .selectFrom('events')
      .select(['subjectId', (eb) => eb.fn.countAll<number>().as('n')])
      .where('accountId', '=', s.b.account.id)
      .where('topic', '=', 'leads')
      .where('type', '=', 'processed')
      .groupBy('subjectId')
      .execute()
    assert.equal(events.length, ids.length)
    assert.ok(
      events.every((e) => Number(e.n) === 1),
      'one leads.processed event per lead',
    )

    // identity.md §6: leads of one person apply in the order received. A worker can only know two
    // leads are one person's when they share a match key, so every such pair must have been
    // applied oldest first, whichever workers held them.
    const rows = await t.db
      .selectFrom('leads')
      .select(['id', 'receivedAt', 'processedAt', 'matchKeys'])
      .where('accountId', '=', s.b.account.id)
      .execute()
    const byKey = new Map<string, typeof rows>()
    for (const row of rows)
      for (const key of JSON.parse(row.matchKeys) as string[])
        byKey.set(key, [...(byKey.get(key) ?? []), row])
    let pairs = 0
    for (const [key, sharing] of byKey) {
      const inReceiptOrder = sharing.sort(
        (a: (typeof rows)[number], b: (typeof rows)[number]) =>
          a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : 1),
      )
      for (let i = 1; i < inReceiptOrder.length; i++) {
        const [before, after] = [inReceiptOrder[i - 1], inReceiptOrder[i]]
        pairs++
        assert.ok(
          Number(before?.processedAt) <= Number(after?.processedAt),
          `${key}: ${before?.id} applied after ${after?.id}`,
        )
      }
    }
    tc.diagnostic(`${pairs} pairs of leads sharing a key, each applied oldest first`)
  })
})
