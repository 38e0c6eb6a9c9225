import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Result } from '../../src/domain/result.js'
import type { LeadInput } from '../../src/http/schemas/lead.js'
import { createGroup, createUser } from '../../src/services/directory.js'
import { blockValue } from '../../src/store/accounts.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { ingest, type Seed, seed } from '../seed.js'

type Prospect = Record<string, unknown> & { id: string; phones: string[]; emails: string[] }
type Merge = {
  survivorId: string
  mergedProspectIds: string[]
  leadId?: string
  keys: { type: string; value: string }[]
}

function must<T>(result: Result<T>): T {
  if (!result.ok) throw new Error(result.message)
  return result.value
}

describe(`prospect changes (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
    t.clock.now = Date.now() + 60_000 // after everything the seed made, so ids and times agree
  })
  after(() => t.close())

  const tick = () => (t.clock.now += 1000)
  const api = (method: 'GET' | 'PATCH' | 'DELETE' | 'POST', url: string, body?: object, key = s.keys.all) =>
    t.app.inject({
      method,
      url: `/v1${url}`,
      headers: { 'x-api-key': key },
      ...(body ? { payload: body } : {}),
    })
  /** A lead of account A, one second after the previous one (so "the older" is unambiguous). */
  const lead = (input: Omit<LeadInput, 'utmSource'>, integration = s.integrations.all) =>
    ingest(t.db, integration, s.a.root, { utmSource: 'test', ...input }, tick())
  const events = async (subjectId: string) =>
    (
      await t.db
        .selectFrom('events')
        .select(['type', 'payload'])
        .where('topic', '=', 'prospects')
        .where('subjectId', '=', subjectId)
        .orderBy('id')
        .execute()
    ).map((e) => ({ type: e.type, ...JSON.parse(e.payload) }))
  const ids = (res: { json: () => unknown }) => (res.json() as Prospect[]).map((p) => p.id)

  describe('PATCH /prospect/{id}', () => {
    test('sets names, label and archiving reason; they persist and a prospects.updated event is written', async () => {
      const { prospectId } = await lead({ firstName: 'Luis', phones: ['+54 9 11 5000-0001'] })
      const patch = { firstName: 'Luisa', lastName: 'Gómez', label: 'hot', archivingReason: 'converted' }
      const res = await api('PATCH', `/prospect/${prospectId}`, patch)
      assert.equal(res.statusCode, 200, res.body)
      const shown = (p: Prospect) => ({
        id: p.id,
        firstName: p.firstName,
        lastName: p.lastName,
        label: p.label,
        archivingReason: p.archivingReason,
        phones: p.phones,
      })
      const want = { id: prospectId, ...patch, phones: ['+5491150000001'] }
      assert.deepEqual(shown(res.json()), want)
      assert.deepEqual(shown((await api('GET', `/prospect/${prospectId}`)).json()), want)
      const last = (await events(prospectId)).at(-1)
      assert.equal(last?.type, 'updated')
      assert.equal(last?.prospect.firstName, 'Luisa')
    })

    test('a phone another prospect holds, written another way, merges them into the older one', async () => {
      const older = await lead({ firstName: 'Marta', emails: ['marta@correo.com.ar'] })
      const newer = await lead({ lastName: 'Ríos', phones: ['+54 9 11 5000-0002'] })
      const res = await api('PATCH', `/prospect/${older.prospectId}`, { phone: '011 15-5000-0002' })
      assert.equal(res.statusCode, 200, res.body)
      const survivor = res.json() as Prospect
      assert.equal(survivor.id, older.prospectId)
      assert.deepEqual(survivor.phones, ['+5491150000002'])
      assert.deepEqual(survivor.emails, ['marta@correo.com.ar'])
      assert.equal(survivor.lastName, 'Ríos', 'an empty field is filled from the merged prospect')
      assert.deepEqual(
        (survivor.leads as { id: string }[]).map((l) => l.id).sort(),
        [older.id, newer.id].sort(),
      )
      const loser = await api('GET', `/prospect/${newer.prospectId}`)
      assert.equal(loser.statusCode, 200)
      assert.equal(loser.json().id, older.prospectId, 'the loser answers with its survivor')

      const merges = (await api('GET', `/prospect/${older.prospectId}/merges`)).json() as Merge[]
      assert.equal(merges.length, 1)
      assert.equal(merges[0]?.survivorId, older.prospectId)
      assert.deepEqual(merges[0]?.mergedProspectIds, [newer.prospectId])
      assert.deepEqual(merges[0]?.keys, [{ type: 'phone', value: '+541150000002' }])
      assert.equal(merges[0]?.leadId, undefined, 'an update, not a lead, made this merge')

      const merged = (await events(older.prospectId)).at(-1)
      assert.equal(merged?.type, 'merged')
      assert.deepEqual(merged?.mergedProspectIds, [newer.prospectId])
      const deleted = (await events(newer.prospectId)).at(-1)
      assert.equal(deleted?.type, 'deleted')
      assert.equal(deleted?.mergedInto, older.prospectId)
    })

    test('PATCH on the newer prospect still leaves the older one as survivor, with the update applied', async () => {
      const older = await lead({ firstName: 'Nora', phones: ['+54 9 11 5000-0003'] })
      const newer = await lead({ emails: ['nora.v@correo.com.ar'] })
      const res = await api('PATCH', `/prospect/${newer.prospectId}`, {
        phone: '11 15 5000-0003',
        label: 'warm',
      })
      assert.equal(res.statusCode, 200, res.body)
      assert.equal(res.json().id, older.prospectId)
      assert.deepEqual(res.json().emails, ['nora.v@correo.com.ar'])
      assert.deepEqual(res.json().phones, ['+5491150000003'])
      assert.equal(res.json().label, 'warm', 'the label asked for is on the prospect the id now names')
      assert.equal((await api('GET', `/prospect/${newer.prospectId}`)).json().id, older.prospectId)
      const list = await api('GET', '/prospects?phoneNumber=%2B5491150000003')
      assert.deepEqual(ids(list), [older.prospectId], 'the loser is no longer listed')
    })

    test('an unusable phone is 400 at /phone; a placeholder or blocked email is 400 at /email; nothing changes', async () => {
      const { prospectId } = await lead({ firstName: 'Olga', phones: ['+54 9 11 5000-0005'] })
      await blockValue(t.db, s.a.account.id, 'email', 'ventas@autosdelsur.com.ar')
      for (const [body, path] of [
        [{ firstName: 'X', phone: '0000000000' }, '/phone'],
        [{ firstName: 'X', phone: '12' }, '/phone'],
        [{ firstName: 'X', email: 'test@test.com' }, '/email'],
        [{ firstName: 'X', email: 'Ventas@autosdelsur.com.ar' }, '/email'],
      ] as const) {
        const res = await api('PATCH', `/prospect/${prospectId}`, body)
        assert.equal(res.statusCode, 400, `${JSON.stringify(body)}: ${res.body}`)
        assert.equal(res.json().code, 'SCHEMA_VALIDATION_FAILED')
        assert.deepEqual(
          res.json().details.map((d: { path: string }) => d.path),
          [path],
        )
      }
      const p = (await api('GET', `/prospect/${prospectId}`)).json() as Prospect
      assert.deepEqual([p.firstName, p.phones, p.emails], ['Olga', ['+5491150000005'], []])
    })

    test("another account's prospect is 404, and it is left as it was", async () => {
      const res = await api(
        'PATCH',
        `/prospect/${s.a.lead.prospectId}`,
        { firstName: 'Hacker' },
        s.keys.otherAccount,
      )
      assert.equal(res.statusCode, 404)
      assert.equal(res.json().code, 'NOT_FOUND')
      assert.equal((await api('GET', `/prospect/${s.a.lead.prospectId}`)).json().firstName, 'Juan')
    })
  })

  describe('DELETE /prospect/{id}', () => {
    test('answers the prospect as it was, then it is gone everywhere and its phone starts a new prospect', async () => {
      const { prospectId } = await lead({ firstName: 'Pablo', phones: ['+54 9 11 5000-0006'] })
      const del = await api('DELETE', `/prospect/${prospectId}`)
      assert.equal(del.statusCode, 200, del.body)
      assert.equal(del.json().id, prospectId)
      assert.equal(del.json().firstName, 'Pablo')
      assert.deepEqual(del.json().phones, ['+5491150000006'])

      assert.equal((await api('GET', `/prospect/${prospectId}`)).statusCode, 404)
      assert.ok(!ids(await api('GET', '/prospects')).includes(prospectId))
      assert.deepEqual(ids(await api('GET', '/prospect-by?phoneNumber=011%2015-5000-0006')), [])
      assert.equal((await events(prospectId)).at(-1)?.type, 'deleted')

      const again = await lead({ phones: ['011 15 5000-0006'] })
      assert.notEqual(again.prospectId, prospectId, 'the deleted prospect released its keys')
      assert.deepEqual(ids(await api('GET', '/prospect-by?phoneNumber=%2B5491150000006')), [again.prospectId])

      const twice = await api('DELETE', `/prospect/${prospectId}`)
      assert.equal(twice.statusCode, 404)
      assert.equal(twice.json().code, 'NOT_FOUND')
    })
  })

  describe('POST /prospect/{id}/transfer', () => {
    async function groupWithAgents(name: string, parentId: string, working: boolean[]) {
      const group = must(
        await createGroup(t.db, s.a.account.id, { name, parentId, distribution: 'roundRobin' }),
      )
      const agents = []
      for (const [i, isWorking] of working.entries()) {
        const email = `${name.toLowerCase()}${i}@autosdelsur.com.ar`
        const created = await createUser(t.db, s.a.account.id, {
          email,
          firstName: `${name}${i}`,
          lastName: 'Test',
          profile: 'agent',
          groupIds: [group.id],
          password: 'correct horse battery staple',
          working: isWorking,
        })
        agents.push(must(created).user)
      }
      return { group, agents }
    }

    test('into a roundRobin group with working agents: assigned in turn, status new, interaction and events', async () => {
      const { group, agents } = await groupWithAgents('Rotativo', s.a.norte.id, [true, true, false])
      const working = agents
        .slice(0, 2)
        .map((a) => a.id)
        .sort()
      const assigned = []
      for (const phone of ['+54 9 11 5000-0007', '+54 9 11 5000-0008']) {
        const { prospectId } = await lead({ phones: [phone] })
        tick()
        const res = await api('POST', `/prospect/${prospectId}/transfer`, { group: group.id })
        assert.equal(res.statusCode, 200, res.body)
        const p = res.json() as Prospect & { agent?: { id: string } }
        assert.equal(p.groupId, group.id)
        assert.equal(p.status, 'new')
        assert.equal(p.transferredAt, new Date(t.clock.now).toISOString())
        assert.equal(p.assigned, new Date(t.clock.now).toISOString())
        assigned.push(p.agent?.id)

        const interactions = (await api('GET', `/prospect/${prospectId}/interactions`)).json()
        const output = interactions.at(-1).output
        assert.equal(output.transferedToGroupId, group.id)
        assert.equal(output.transferedToAgentId, p.agent?.id)
        const recent = (await events(prospectId)).slice(-2)
        assert.deepEqual(
          recent.map((e) => e.type),
          ['transferred', 'assigned'],
        )
        assert.equal(recent[0]?.groupId, group.id)
        assert.equal(recent[1]?.agentId, p.agent?.id)
      }
      assert.deepEqual(assigned, working, 'each working agent takes a turn; the offline one none')
    })

    test('into a group where nobody works: unclaimed, without agent, and the former agent is dropped', async () => {
      const busy = await groupWithAgents('Abierto', s.a.root.id, [true])
      const closed = await groupWithAgents('Cerrado', s.a.root.id, [false])
      const { prospectId } = await lead({ phones: ['+54 9 11 5000-0009'] })
      assert.ok(
        (await api('POST', `/prospect/${prospectId}/transfer`, { group: busy.group.id })).json().agent,
      )
      tick()
      const res = await api('POST', `/prospect/${prospectId}/transfer`, { group: closed.group.id })
      assert.equal(res.statusCode, 200, res.body)
      assert.equal(res.json().status, 'unclaimed')
      assert.equal(res.json().groupId, closed.group.id)
      assert.equal(res.json().agent, undefined)
      assert.equal(res.json().assigned, undefined)
      assert.equal((await events(prospectId)).at(-1)?.type, 'transferred')
    })

    test('a group outside the key subtree or in another account is 404; prospects:read is enough', async () => {
      const norte = await lead({ phones: ['+54 9 11 5000-0010'] }, s.integrations.norte)
      const outside = await api(
        'POST',
        `/prospect/${norte.prospectId}/transfer`,
        { group: s.a.oeste.id },
        s.keys.norte,
      )
      assert.equal(outside.statusCode, 404)
      assert.equal(outside.json().code, 'NOT_FOUND')
      const foreign = await api('POST', `/prospect/${norte.prospectId}/transfer`, { group: s.b.root.id })
      assert.equal(foreign.statusCode, 404)
      const byB = await api(
        'POST',
        `/prospect/${norte.prospectId}/transfer`,
        { group: s.b.root.id },
        s.keys.otherAccount,
      )
      assert.equal(byB.statusCode, 404)
      assert.equal((await api('GET', `/prospect/${norte.prospectId}`)).json().groupId, s.a.norte.id)

      const readOnly = await api(
        'POST',
        `/prospect/${norte.prospectId}/transfer`,
        { group: s.a.desk.id },
        s.keys.readOnly,
      )
      assert.equal(readOnly.statusCode, 200, readOnly.body)
      assert.equal(readOnly.json().groupId, s.a.desk.id)
      assert.equal(readOnly.json().status, 'unclaimed', 'Desk distributes nothing')
    })
  })

  describe('GET /prospect/{id}/merges', () => {
    test('explains a lead-driven merge: the bridging lead, the prospect merged away and both keys', async () => {
      const a = await lead({ firstName: 'Quique', phones: ['+54 9 11 5000-0011'] })
      const b = await lead({ emails: ['quique.r+autos@gmail.com'] })
      const bridge = await lead({ phones: ['011 15-5000-0011'], emails: ['QuiqueR@gmail.com'] })
      assert.equal(bridge.prospectId, a.prospectId)
      for (const id of [a.prospectId, b.prospectId]) {
        const res = await api('GET', `/prospect/${id}/merges`, undefined, s.keys.readOnly)
        assert.equal(res.statusCode, 200, res.body)
        const records = res.json() as Merge[]
        assert.equal(records.length, 1, 'one lead, one merge record')
        const [record] = records
        assert.equal(record?.survivorId, a.prospectId)
        assert.deepEqual(record?.mergedProspectIds, [b.prospectId])
        assert.equal(record?.leadId, bridge.id)
        assert.deepEqual(record?.keys.map((k) => `${k.type}:${k.value}`).sort(), [
          'email:quiquer@gmail.com',
          'phone:+541150000011',
        ])
      }
      const other = await api('GET', `/prospect/${a.prospectId}/merges`, undefined, s.keys.otherAccount)
      assert.equal(other.statusCode, 404)
    })
  })

  test('a contact held by a prospect outside the key’s groups is refused 409, and nothing merges', async () => {
    const norte = s.integrations.norte
    const mine = await ingest(
      t.db,
      norte,
      s.a.norte,
      { utmSource: 'norte', emails: ['norte.cliente@loja.com.ar'] },
      tick(),
    )
    const theirs = await lead({ phones: ['+54 9 11 7000-0001'] }) // the root group's, unseen by Norte
    const res = await api(
      'PATCH',
      `/prospect/${mine.prospectId}`,
      { phone: '011 15-7000-0001', label: 'x' },
      s.keys.norte,
    )
    assert.equal(res.statusCode, 409, res.body)
    assert.equal(res.json().code, 'CONFLICT')
    assert.equal(res.json().details[0].path, '/phone')
    assert.equal(
      (await api('GET', `/prospect/${mine.prospectId}`, undefined, s.keys.norte)).json().label,
      undefined,
    )
    assert.deepEqual((await api('GET', `/prospect/${theirs.prospectId}`)).json().phones, ['+5491170000001'])
  })
})
