import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { newId } from '../../src/domain/ids.js'
import { createUser } from '../../src/services/directory.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { ingest, type Seed, seed } from '../seed.js'

type Interaction = { id: string; prospectId: string; agentId?: string; createdAt: string } & {
  status: string
  via: string
  output: Record<string, unknown>
}

const DAY = 24 * 60 * 60 * 1000
/** An interaction by an agent (null: by the system), so many seconds after the assignment. */
type Answer = [by: string | null, seconds: number]
const iso = (t: number) => new Date(t).toISOString()

/** The app on a fresh seeded database; the clock starts after everything the seed made. */
function world() {
  const w = {} as { t: TestContext; s: Seed }
  before(async () => {
    w.t = await createTestApp()
    w.s = await seed(w.t.db, w.t.secretKey)
    w.t.clock.now = Date.now() + 60_000
  })
  after(() => w.t.close())
  const v1 = (url: string) => (url.startsWith('/v1/') ? url : `/v1${url}`) // a Link header has it already
  const get = (url: string, key = w.s.keys.all) =>
    w.t.app.inject({ method: 'GET', url: v1(url), headers: { 'x-api-key': key } })
  const post = (url: string, body: object, key = w.s.keys.all) =>
    w.t.app.inject({ method: 'POST', url: `/v1${url}`, headers: { 'x-api-key': key }, payload: body })
  /** An interaction the API cannot make (an agent's, or an old one), with the id of its time. */
  const handMade = async (
    prospectId: string,
    at: number,
    fields: { agentId?: string | null; via?: string; status?: 'created' | 'updated' } = {},
  ) => {
    const id = newId(at)
    const row = { id, accountId: w.s.a.account.id, prospectId, leadId: null, createdAt: at, proactive: 0 }
    const what = { agentId: null, via: 'whatsApp', status: 'created' as const, output: '{}', ...fields }
    await w.t.db
      .insertInto('interactions')
      .values({ ...row, ...what })
      .execute()
    return id
  }
  return { w, get, post, handMade }
}

describe(`interactions (${ENGINE})`, () => {
  const { w, get, post, handMade } = world()
  const tick = () => (w.t.clock.now += 1000)
  const list = async (url: string, key?: string) => {
    const res = await get(url, key)
    assert.equal(res.statusCode, 200, res.body)
    return res.json() as Interaction[]
  }
  const ids = (items: { id: string }[]) => items.map((i) => i.id)
  const count = async (prospectId: string) => (await list(`/prospect/${prospectId}/interactions`)).length
  let norte: string // the one prospect of Sucursal Norte (the other tests' prospects land at the root)
  before(async () => {
    const input = { utmSource: 'test', firstName: 'Rosa', phones: ['+54 9 11 6000-0001'] }
    norte = (await ingest(w.t.db, w.s.integrations.norte, w.s.a.norte, input, tick())).prospectId
  })

  describe('POST /prospect/{id}/interactions', () => {
    test('a note answers [interaction] with output.comment, is kept, and writes an interactions event', async () => {
      tick()
      const res = await post(`/prospect/${norte}/interactions`, { type: 'note', content: 'Por WhatsApp' })
      assert.equal(res.statusCode, 200, res.body)
      const [created, ...rest] = res.json() as Interaction[]
      assert.deepEqual(rest, [])
      assert.ok(created)
      assert.deepEqual(created.output, { comment: 'Por WhatsApp' })
      assert.equal(created.agentId, undefined, 'performed by the integration, not an agent')
      assert.deepEqual([created.prospectId, created.via, created.status], [norte, 'other', 'created'])
      assert.equal(created.createdAt, iso(w.t.clock.now))
      assert.deepEqual((await get(`/prospect/${norte}/interaction/${created.id}`)).json(), created)
      const event = await w.t.db
        .selectFrom('events')
        .selectAll()
        .where('topic', '=', 'interactions')
        .where('subjectId', '=', norte)
        .orderBy('id', 'desc')
        .executeTakeFirstOrThrow()
      assert.equal(event.type, 'created')
      assert.equal(JSON.parse(event.payload).interaction.id, created.id)
    })

    test('a call, a message and a question keep their fields under output.call, .message and .question', async () => {
      const call = { startedAt: '2026-11-20T10:00:00.000Z', duration: 95_000, recordingUrl: 'https://r.ar/1' }
      const [c] = (await post(`/prospect/${norte}/interactions`, { type: 'call', ...call })).json()
      assert.equal(c.via, 'inboundCall')
      assert.deepEqual(c.output, { call })
      const message = { type: 'message', content: '¿Sigue disponible?', sender: '+5491160000001' }
      const [m] = (await post(`/prospect/${norte}/interactions`, message)).json()
      assert.equal(m.output.message.content, '¿Sigue disponible?')
      assert.equal(m.output.message.performer, 'integration')
      assert.equal(m.output.message.sender, '+5491160000001')
      const question = { question: '¿Acepta permuta?', answer: 'Sí', threadTitle: 'Gol Trend 2019' }
      const [q] = (await post(`/prospect/${norte}/interactions`, { type: 'question', ...question })).json()
      assert.equal(q.via, 'webAction')
      assert.deepEqual(q.output, { question })
    })

    test('an invalid NewEvent is 400 with the failing paths, and nothing is recorded', async () => {
      const before = await count(norte)
      for (const [body, path] of [
        [{ type: 'fax', content: 'hola' }, '/type'],
        [{ type: 'note' }, '/content'],
        [{ type: 'call', duration: -1 }, '/duration'],
      ] as const) {
        const res = await post(`/prospect/${norte}/interactions`, body)
        assert.equal(res.statusCode, 400, res.body)
        assert.equal(res.json().code, 'SCHEMA_VALIDATION_FAILED')
        assert.ok(
          res.json().details.some((d: { path: string }) => d.path === path),
          res.body,
        )
      }
      assert.equal(await count(norte), before)
    })

    test('needs prospects:write; another account or a prospect outside the key subtree is 404', async () => {
      const before = await count(norte)
      const note = { type: 'note', content: 'x' }
      for (const key of [w.s.keys.readOnly, w.s.keys.leadsOnly]) {
        const res = await post(`/prospect/${norte}/interactions`, note, key)
        assert.equal(res.statusCode, 403)
        assert.equal(res.json().code, 'INVALID_SCOPE')
      }
      const foreign = await post(`/prospect/${norte}/interactions`, note, w.s.keys.otherAccount)
      assert.equal(foreign.statusCode, 404)
      const outside = await post(`/prospect/${w.s.a.lead.prospectId}/interactions`, note, w.s.keys.norte)
      assert.equal(outside.statusCode, 404)
      assert.equal(await count(norte), before)
    })
  })

  test('GET /prospect/{id}/interactions is oldest first and filters status, via, via[] and dates', async () => {
    const history = [{ type: 'note' as const, content: 'desde el formulario' }]
    const input = { utmSource: 'test', phones: ['+54 9 11 6000-0002'], history }
    const { prospectId: p } = await ingest(w.t.db, w.s.integrations.all, w.s.a.root, input, tick())
    const made: Interaction[] = []
    for (const body of [
      { type: 'call', duration: 1000 },
      { type: 'message', content: 'hola' },
      { type: 'question', question: '¿Precio?' },
      { type: 'note', content: 'cerrar el viernes' },
    ]) {
      tick()
      made.push(...(await post(`/prospect/${p}/interactions`, body)).json())
    }
    const [call, message, question, note] = made as [Interaction, Interaction, Interaction, Interaction]
    await w.t.db.updateTable('interactions').set({ status: 'updated' }).where('id', '=', message.id).execute()

    const all = await list(`/prospect/${p}/interactions`)
    assert.deepEqual(all[0]?.output, { comment: 'desde el formulario' }, 'the lead’s own note comes first')
    assert.deepEqual(ids(all.slice(1)), ids(made))
    const of = (query: string) => list(`/prospect/${p}/interactions?${query}`).then(ids)
    assert.deepEqual(await of('status=updated'), [message.id])
    assert.deepEqual(await of('status=created'), ids(all).toSpliced(2, 1))
    assert.deepEqual(await of('via=inboundCall'), [call.id])
    assert.deepEqual(await of('via[]=webAction&via[]=inboundCall'), [call.id, question.id])
    assert.deepEqual(await of('via=webAction&via=inboundCall'), [call.id, question.id])
    const range = `createdAfter=${call.createdAt}&createdBefore=${question.createdAt}`
    assert.deepEqual(await of(range), [call.id, message.id, question.id])

    const one = await get(`/prospect/${p}/interaction/${note.id}`)
    assert.equal(one.statusCode, 200)
    assert.deepEqual(one.json(), all.at(-1))
    assert.equal((await get(`/prospect/${norte}/interaction/${note.id}`)).statusCode, 404)
    assert.equal((await get(`/prospect/${p}/interaction/${newId(w.t.clock.now)}`)).statusCode, 404)
  })

  describe('GET /prospects/interactions', () => {
    const made = {} as Record<'a0' | 'a1' | 'a2' | 'a3' | 'b1', string>
    let now: number
    before(async () => {
      now = tick()
      const ana = w.s.a.agents.ana.id
      made.a0 = await handMade(norte, now - 40 * DAY, { agentId: ana })
      made.a1 = await handMade(norte, now - 3000_000, { agentId: ana })
      made.a2 = await handMade(norte, now - 2000_000, { agentId: ana, via: 'email', status: 'updated' })
      made.b1 = await handMade(norte, now - 1500_000, { agentId: w.s.a.agents.beto.id })
      made.a3 = await handMade(norte, now - 1000_000, { agentId: ana })
    })
    const ofAna = (query = '') =>
      list(`/prospects/interactions?agent=${w.s.a.agents.ana.id}${query}`).then(ids)

    test('newest first: every interaction of the last 31 days, nothing older', async () => {
      const listed = ids(await list('/prospects/interactions'))
      const expected = await w.t.db
        .selectFrom('interactions')
        .select('id')
        .where('accountId', '=', w.s.a.account.id)
        .where('createdAt', '>=', now - 31 * DAY)
        .orderBy('id', 'desc')
        .execute()
      assert.deepEqual(listed, ids(expected))
      assert.ok(listed.includes(made.a3) && listed.includes(w.s.a.lead.interactionId))
      assert.ok(!listed.includes(made.a0))
    })

    test('filters agent, status, via, via[] and dates (with the start/end aliases)', async () => {
      const { a1, a2, a3 } = made
      assert.deepEqual(await ofAna(), [a3, a2, a1])
      assert.deepEqual(await ofAna('&status=updated'), [a2])
      assert.deepEqual(await ofAna('&via=whatsApp'), [a3, a1])
      assert.deepEqual(await ofAna('&via[]=email&via[]=inboundCall'), [a2])
      const range = (from: string, to: string) =>
        `&${from}=${iso(now - 2000_000)}&${to}=${iso(now - 1000_000)}`
      assert.deepEqual(await ofAna(range('createdAfter', 'createdBefore')), [a3, a2])
      assert.deepEqual(await ofAna(range('start', 'end')), [a3, a2])
    })

    test('limit and the before cursor page through everything, the old included; Link names the next page', async () => {
      const first = await get(`/prospects/interactions?agent=${w.s.a.agents.ana.id}&limit=2`)
      assert.deepEqual(ids(first.json()), [made.a3, made.a2])
      const next = /^<([^>]+)>; rel="next"$/.exec(String(first.headers.link))?.[1]
      assert.ok(next?.includes(`before=${made.a2}`), String(first.headers.link))
      assert.deepEqual(ids(await list(next ?? '')), [made.a1, made.a0])
      assert.deepEqual(await ofAna(`&limit=10&before=${made.a2}`), [made.a1, made.a0])
    })

    test('the 31-day rule: a longer range or an old single date without limit is 400 INVALID_DATE_RANGE', async () => {
      const old = iso(now - 40 * DAY)
      for (const query of [`start=${old}&end=${iso(now)}`, `createdAfter=${iso(now - 35 * DAY)}`]) {
        const res = await get(`/prospects/interactions?${query}`)
        assert.equal(res.statusCode, 400, query)
        assert.equal(res.json().code, 'INVALID_DATE_RANGE')
      }
      const { a0, a1, a2, a3 } = made
      assert.deepEqual(await ofAna(`&limit=10&start=${old}&end=${iso(now)}`), [a3, a2, a1, a0])
    })

    test('format=csv gives a header row and one row per interaction, in the same order', async () => {
      const res = await get(`/prospects/interactions?agent=${w.s.a.agents.ana.id}&format=csv`)
      assert.equal(res.statusCode, 200)
      assert.match(String(res.headers['content-type']), /^text\/csv/)
      const [header, ...rows] = res.body.trimEnd().split('\r\n')
      assert.match(header ?? '', /^id,prospectId,/)
      assert.deepEqual(
        rows.map((r) => r.split(',')[0]),
        [made.a3, made.a2, made.a1],
      )
    })

    test('a Norte key sees only the interactions of Norte’s prospects', async () => {
      const seen = await list('/prospects/interactions', w.s.keys.norte)
      assert.deepEqual([...new Set(seen.map((i) => i.prospectId))], [norte])
      assert.ok(ids(seen).includes(made.b1))
      assert.ok(ids(await list('/prospects/interactions')).includes(w.s.a.lead.interactionId))
      const root = await get(`/prospect/${w.s.a.lead.prospectId}/interactions`, w.s.keys.norte)
      assert.equal(root.statusCode, 404)
    })
  })
})

describe(`response time (${ENGINE})`, () => {
  const { w, post, handMade } = world()
  let dario: string
  before(async () => {
    const { t, s } = w
    let n = 0
    /** A prospect of `groupId` assigned `daysAgo` to `agentId`, then the interactions `answers` make. */
    const assigned = async (groupId: string, agentId: string, daysAgo: number, ...answers: Answer[]) => {
      const assignedAt = t.clock.now - daysAgo * DAY
      const input = { utmSource: 'test', emails: [`rt${n++}@correo.com.ar`] }
      const { prospectId } = await ingest(t.db, s.integrations.all, s.a.root, input, assignedAt - 60_000)
      const change = { groupId, agentId, assignedAt, status: 'new' as const }
      await t.db.updateTable('prospects').set(change).where('id', '=', prospectId).execute()
      for (const [by, seconds] of answers)
        await handMade(prospectId, assignedAt + seconds * 1000, { agentId: by })
    }
    const [ana, beto, carla] = [s.a.agents.ana.id, s.a.agents.beto.id, s.a.agents.carla.id]
    await assigned(s.a.norte.id, ana, 2, [beto, 10], [ana, 60], [ana, 500]) // 60: ana's first answer
    await assigned(s.a.norte.id, ana, 5, [ana, -30], [ana, 180]) // 180: before assignment is no answer
    await assigned(s.a.norte.id, ana, 40, [ana, 5]) // outside the 30 days
    await assigned(s.a.norte.id, ana, 1, [null, 1], [beto, 2]) // ana has not answered yet
    await assigned(s.a.desk.id, beto, 3, [beto, 300])
    await assigned(s.a.oeste.id, carla, 1, [carla, 1000])
    const user = { firstName: 'Darío', lastName: 'Test', profile: 'agent' as const, groupIds: [s.a.norte.id] }
    const created = await createUser(t.db, s.a.account.id, { ...user, email: 'dario@autosdelsur.com.ar' })
    assert.ok(created.ok)
    dario = created.value.user.id
  })
  const timeOf = async (kind: 'agents' | 'groups', id: string, key?: string) => {
    const res = await post(`/${kind}/${id}/response-time`, {}, key)
    assert.equal(res.statusCode, 200, res.body)
    return res.json()
  }

  test('an agent: mean seconds from assignment to their first own interaction after it, last 30 days', async () => {
    const { ana, beto } = w.s.a.agents
    const answered = { agentId: ana.id, averageSeconds: 120, samples: 2 }
    assert.deepEqual(await timeOf('agents', ana.id, w.s.keys.readOnly), answered)
    assert.deepEqual(await timeOf('agents', beto.id), { agentId: beto.id, averageSeconds: 300, samples: 1 })
    assert.deepEqual(await timeOf('agents', dario), { agentId: dario, averageSeconds: null, samples: 0 })
  })

  test('a group: the prospects of its whole subtree, and only those', async () => {
    const { norte, desk, root } = w.s.a
    assert.deepEqual(await timeOf('groups', norte.id), { groupId: norte.id, averageSeconds: 180, samples: 3 })
    assert.deepEqual(await timeOf('groups', desk.id), { groupId: desk.id, averageSeconds: 300, samples: 1 })
    assert.deepEqual(await timeOf('groups', root.id), { groupId: root.id, averageSeconds: 385, samples: 4 })
  })

  test('unknown ids, other accounts and ids outside the key subtree are 404', async () => {
    const unknown = newId(w.t.clock.now)
    const { a, b, keys } = w.s
    for (const [url, key] of [
      [`/agents/${unknown}`, keys.all],
      [`/agents/${b.agent.id}`, keys.all],
      [`/agents/${a.agents.ana.id}`, keys.otherAccount],
      [`/agents/${a.agents.carla.id}`, keys.norte],
      [`/groups/${unknown}`, keys.all],
      [`/groups/${b.root.id}`, keys.all],
      [`/groups/${a.oeste.id}`, keys.norte],
    ] as const) {
      const res = await post(`${url}/response-time`, {}, key)
      assert.equal(res.statusCode, 404, url)
      assert.equal(res.json().code, 'NOT_FOUND')
    }
  })
})
