import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Result } from '../../src/domain/result.js'
import { ALL_SCOPES } from '../../src/domain/scopes.js'
import type { LeadInput } from '../../src/http/schemas/lead.js'
import { createIntegration } from '../../src/services/access.js'
import { checkLead } from '../../src/services/checking.js'
import { createGroup, createUser } from '../../src/services/directory.js'
import { storeLeads } from '../../src/services/intake.js'
import { processLead } from '../../src/services/processing.js'
import { blockValue } from '../../src/store/accounts.js'
import { findGroup, type Group } from '../../src/store/groups.js'
import type { Integration } from '../../src/store/integrations.js'
import { findMerges } from '../../src/store/merges.js'
import { findProspect, resolveSurvivor } from '../../src/store/prospects.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { ingest, type Seed, seed } from '../seed.js'

function must<T>(result: Result<T>): T {
  if (!result.ok) throw new Error(result.message)
  return result.value
}

describe(`identity: merge rules (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  let bIntegration: Integration
  let bGroup: Group
  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
    bGroup = (await findGroup(t.db, s.b.account.id, s.b.root.id)) as Group
    bIntegration = must(
      await createIntegration(
        t.db,
        t.secretKey,
        { accountId: s.b.account.id, groupId: bGroup.id, name: 'identity', scopes: ALL_SCOPES },
        'test',
      ),
    ).integration
  })
  after(() => t.close())

  let clock = Date.parse('2026-11-20T12:00:00Z')
  const tick = () => {
    clock += 1000
    return clock
  }
  /** Leads of account B (BR), one second apart so "oldest" is unambiguous. */
  const lead = (input: Omit<LeadInput, 'utmSource'>) =>
    ingest(t.db, bIntegration, bGroup, { utmSource: 'test', ...input }, tick())
  const prospect = async (id: string) =>
    (await findProspect(t.db, s.b.account.id, id)) ?? assert.fail(`prospect ${id}`)

  test("the original product's example: a phone, then the same phone with an email → one prospect, both leads", async () => {
    const first = await lead({ phones: ['+55 51 987654321'] })
    const second = await lead({ phones: ['+55 51 987654321'], emails: ['ana@loja.com.br'] })
    assert.equal(second.prospectId, first.prospectId)
    const p = await prospect(first.prospectId)
    assert.deepEqual(
      p.emails.map((e) => e.value),
      ['ana@loja.com.br'],
    )
    const leads = await t.db
      .selectFrom('leads')
      .select(['id', 'merged'])
      .where('prospectId', '=', p.id)
      .orderBy('id')
      .execute()
    assert.deepEqual(
      leads.map((l) => [l.id, l.merged]),
      [
        [first.id, 0],
        [second.id, 1],
      ],
    )
  })

  test('transitive merge: a lead carrying A’s phone and B’s email merges B into A, and the record says why', async () => {
    const a = await lead({ firstName: 'Rita', phones: ['(11) 97777-1111'] })
    const b = await lead({ lastName: 'Lopes', emails: ['rita.lopes@gmail.com'], locality: 'Campinas' })
    assert.notEqual(a.prospectId, b.prospectId)
    const bridge = await lead({ phones: ['+55 11 7777-1111'], emails: ['ritalopes+promo@gmail.com'] })
    assert.equal(bridge.prospectId, a.prospectId, 'the oldest prospect survives')
    const survivor = await prospect(a.prospectId)
    assert.equal(survivor.firstName, 'Rita')
    assert.equal(survivor.lastName, 'Lopes', 'an empty field is filled from the merged prospect')
    assert.equal(survivor.details.locality, 'Campinas')
    const loser = await prospect(b.prospectId)
    assert.equal(loser.mergedInto, a.prospectId)
    assert.equal((await resolveSurvivor(t.db, s.b.account.id, b.prospectId))?.id, a.prospectId)
    const leads = await t.db.selectFrom('leads').select('id').where('prospectId', '=', a.prospectId).execute()
    assert.equal(leads.length, 3)
    const [record] = (await findMerges(t.db, a.prospectId)).filter((m) => m.mergedProspectIds.length > 0)
    assert.ok(record)
    assert.deepEqual(record.mergedProspectIds, [b.prospectId])
    assert.equal(record.leadId, bridge.id)
    assert.deepEqual(record.keys.map((k) => `${k.type}:${k.value}`).sort(), [
      'email:ritalopes@gmail.com',
      'phone:+5511977771111',
    ])
    const events = await t.db
      .selectFrom('events')
      .select(['type', 'subjectId', 'payload'])
      .where('topic', '=', 'prospects')
      .where('subjectId', 'in', [a.prospectId, b.prospectId])
      .orderBy('id')
      .execute()
    const deleted = events.find((e) => e.type === 'deleted')
    assert.equal(deleted?.subjectId, b.prospectId)
    assert.equal(JSON.parse(deleted?.payload ?? '{}').mergedInto, a.prospectId)
    assert.ok(events.some((e) => e.type === 'merged' && e.subjectId === a.prospectId))
  })

  test('junk shared by strangers never glues them: repeated digits, placeholders, blocked values', async () => {
    await blockValue(t.db, s.b.account.id, 'phone', '+551140028922')
    const one = await lead({
      phones: ['0000000000', '(11) 4002-8922'],
      emails: ['test@test.com', 'one@loja.com.br'],
    })
    const two = await lead({
      phones: ['0000000000', '+55 11 4002-8922'],
      emails: ['test@test.com', 'two@loja.com.br'],
    })
    assert.notEqual(one.prospectId, two.prospectId)
    const p = await prospect(one.prospectId)
    assert.deepEqual(p.phones, [], 'unusable and blocked phones stay on the lead only')
  })

  test('accounts never merge: the same phone in two accounts is two prospects', async () => {
    const inB = await lead({ phones: ['+54 9 11 4552-0371'] })
    assert.notEqual(inB.prospectId, s.a.lead.prospectId, 'account A holds +5491145520371 already')
  })

  test('at most 20 phones: a phone past the cap is not linked, and the merge record says so', async () => {
    const phones = Array.from({ length: 20 }, (_, i) => `+55 21 9${String(8000_0000 + i)}`)
    const full = await lead({ phones })
    assert.equal((await prospect(full.prospectId)).phones.length, 20)
    const extra = await lead({ phones: [phones[0] as string, '+55 21 97777-0000'] })
    assert.equal(extra.prospectId, full.prospectId)
    const p = await prospect(full.prospectId)
    assert.equal(p.phones.length, 20)
    assert.ok(!p.phones.some((c) => c.value === '+5521977770000'))
    const stranger = await lead({ phones: ['+55 21 97777-0000'] })
    assert.notEqual(stranger.prospectId, full.prospectId, 'the unlinked phone never pulls a stranger in')
    const records = await findMerges(t.db, full.prospectId)
    assert.deepEqual(
      records.at(-1)?.skippedKeys.map((k) => k.value),
      ['+5521977770000'],
    )
  })

  test('an archived prospect never absorbs a new lead; the new prospect points back to it', async () => {
    const old = await lead({ emails: ['volta@loja.com.br'] })
    await t.db.updateTable('prospects').set({ status: 'archived' }).where('id', '=', old.prospectId).execute()
    await t.db
      .updateTable('prospectKeys')
      .set({ active: 0 })
      .where('prospectId', '=', old.prospectId)
      .execute()
    const back = await lead({ emails: ['volta@loja.com.br'] })
    assert.notEqual(back.prospectId, old.prospectId)
    assert.equal((await prospect(back.prospectId)).previousProspectId, old.prospectId)
  })

  test('leads of one person apply in the order received: a newer lead waits for an older one', async () => {
    const at = tick()
    const stored = []
    for (const firstName of ['Primeiro', 'Segundo']) {
      const checked = checkLead(
        { utmSource: 'test', firstName, emails: ['ordem@loja.com.br'] },
        { integration: bIntegration, group: bGroup, industry: 'retail', blocked: new Set(), at },
      )
      assert.ok(checked.ok)
      stored.push(checked.lead)
    }
    assert.ok((await storeLeads(t.db, stored, { at })).ok)
    const [older, newer] = stored.map((l) => l.id) as [string, string]
    const early = await processLead(t.db, newer, () => at)
    assert.deepEqual(early, { status: 'deferred', leadId: newer, waitingFor: older, until: at })
    assert.equal(
      (await t.db.selectFrom('leads').select('status').where('id', '=', newer).executeTakeFirstOrThrow())
        .status,
      'queued',
    )
    const first = await processLead(t.db, older, () => at)
    const second = await processLead(t.db, newer, () => at)
    assert.ok(first.status === 'processed' && second.status === 'processed')
    assert.equal(second.prospectId, first.prospectId)
    assert.equal(
      (await prospect(first.prospectId)).firstName,
      'Primeiro',
      'the older lead filled the name first',
    )
  })

  test('each change writes its events in the same transaction: one leads.processed per lead', async () => {
    const rows = await t.db
      .selectFrom('events')
      .select(['subjectId', (eb) => eb.fn.countAll<number>().as('n')])
      .where('topic', '=', 'leads')
      .groupBy('subjectId')
      .execute()
    const processed = await t.db.selectFrom('leads').select('id').where('status', '=', 'processed').execute()
    assert.equal(rows.length, processed.length)
    assert.ok(rows.every((r) => Number(r.n) === 1))
  })
})

describe(`identity: routing a new prospect (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  before(async () => {
    t = await createTestApp({ now: Date.parse('2026-11-23T15:00:00Z') }) // a Monday, 12:00 in São Paulo
    s = await seed(t.db, t.secretKey)
  })
  after(() => t.close())

  async function groupWith(
    distribution: Group['distribution'],
    options: { officeHours?: Group['officeHours']; absenceMessage?: string } = {},
  ) {
    const group = must(
      await createGroup(t.db, s.b.account.id, {
        name: `Loja ${distribution} ${Math.random()}`,
        distribution,
        ...options,
      }),
    )
    const agents = []
    for (const name of ['Alice', 'Bruno', 'Caio']) {
      const agent = must(
        await createUser(t.db, s.b.account.id, {
          email: `${name.toLowerCase()}.${group.id}@lojaazul.com.br`,
          firstName: name,
          lastName: 'Souza',
          profile: 'agent',
          groupIds: [group.id],
          working: name !== 'Caio',
          legacyId: `${name.toUpperCase()}-1`,
        }),
      ).user
      agents.push(agent)
    }
    const integration = must(
      await createIntegration(
        t.db,
        t.secretKey,
        { accountId: s.b.account.id, groupId: group.id, name: 'routing', scopes: ALL_SCOPES },
        'test',
      ),
    ).integration
    let n = 0
    const send = (input: Partial<LeadInput> = {}) =>
      ingest(
        t.db,
        integration,
        group,
        { utmSource: 'test', emails: [`cliente${n++}.${group.id}@loja.com.br`], ...input },
        t.clock.now,
      )
    const routed = async (input?: Partial<LeadInput>) => {
      const { prospectId } = await send(input)
      return (await findProspect(t.db, s.b.account.id, prospectId)) ?? assert.fail()
    }
    return { group, agents, routed }
  }

  test('roundRobin takes turns among working agents only', async () => {
    const { agents, routed } = await groupWith('roundRobin')
    const assigned = []
    for (let i = 0; i < 4; i++) assigned.push((await routed()).agentId)
    const [alice, bruno] = agents
      .map((a) => a.id)
      .slice(0, 2)
      .sort()
    assert.deepEqual(assigned, [alice, bruno, alice, bruno])
    const p = await routed()
    assert.equal(p.status, 'new')
    const interactions = await t.db
      .selectFrom('interactions')
      .selectAll()
      .where('prospectId', '=', p.id)
      .execute()
    assert.equal(JSON.parse(interactions[0]?.output ?? '{}').transferedToAgentId, p.agentId)
  })

  test('leastLoaded picks the working agent with the fewest open prospects', async () => {
    const { agents, routed } = await groupWith('leastLoaded')
    const [alice, bruno] = agents
    const first = await routed({ agent: 'ALICE-1' }) // hint: Alice now holds one
    assert.equal(first.agentId, alice?.id)
    assert.equal((await routed()).agentId, bruno?.id)
  })

  test('an agent hint by legacyId, email or accent-insensitive full name wins over distribution', async () => {
    const { agents, routed } = await groupWith('none')
    const caio = agents[2]
    assert.equal((await routed({ agent: 'caio-1' })).agentId, caio?.id, 'even an agent who is not working')
    assert.equal((await routed({ agent: caio?.email })).agentId, caio?.id)
    assert.equal((await routed({ agent: '  CÁIO   souza ' })).agentId, caio?.id)
    assert.equal((await routed({ agent: 'Nobody Here' })).status, 'unclaimed')
  })

  test('outside office hours with no one working: unclaimed, with the absence message', async () => {
    const { routed } = await groupWith('roundRobin', {
      officeHours: { sunday: [{ from: '09:00', to: '12:00' }] },
      absenceMessage: 'Voltamos segunda!',
    })
    const p = await routed()
    assert.equal(p.status, 'unclaimed')
    assert.equal(p.agentId, null)
    assert.equal(p.absenceMessage, 'Voltamos segunda!')
  })

  test('a lead that merges into an existing prospect never changes its agent', async () => {
    const { routed } = await groupWith('roundRobin')
    const first = await routed({ emails: ['fiel@loja.com.br'] })
    const again = await routed({ emails: ['fiel@loja.com.br'] })
    assert.equal(again.id, first.id)
    assert.equal(again.agentId, first.agentId)
  })
})
