import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { type Seed, seed } from '../seed.js'

type Agent = Record<string, unknown> & { id: string }

describe(`agents routes (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
  })
  after(() => t.close())

  const get = (url: string, key = s.keys.all) =>
    t.app.inject({ method: 'GET', url, headers: { 'x-api-key': key } })
  const ids = (agents: Agent[]) => agents.map((a) => a.id).sort()
  const setActive = (id: string, active: boolean) =>
    t.db
      .updateTable('users')
      .set({ active: active ? 1 : 0 })
      .where('id', '=', id)
      .execute()

  describe('GET /agents', () => {
    test('lists the agents of a group and of its descendants, never administrators', async () => {
      const { ana, beto, carla } = s.a.agents
      const root = await get(`/v1/agents?group=${s.a.root.id}`)
      assert.equal(root.statusCode, 200)
      assert.deepEqual(ids(root.json()), [ana.id, beto.id, carla.id].sort())
      assert.ok(!ids(root.json()).includes(s.a.admin.id)) // the administrator sits at the root
      assert.deepEqual(
        ids((await get(`/api/v1/agents?group=${s.a.norte.id}`)).json()),
        [ana.id, beto.id].sort(),
      )
      assert.deepEqual(ids((await get(`/v1/agents?group=${s.a.desk.id}`)).json()), [beto.id])
    })

    test('an agent is shown with its public fields only, and no nulls', async () => {
      const agents = (await get(`/v1/agents?group=${s.a.norte.id}`)).json() as Agent[]
      const ana = agents.find((a) => a.id === s.a.agents.ana.id)
      assert.deepEqual(ana, {
        id: s.a.agents.ana.id,
        firstName: 'ana',
        lastName: 'Test',
        email: 'ana@autosdelsur.com.ar',
      })
      for (const agent of agents) {
        assert.equal('passwordHash' in agent, false)
        assert.deepEqual(
          Object.entries(agent).filter(([, v]) => v === null),
          [],
          `${agent.id} has null fields`,
        )
      }
    })

    test('active=true and active=false filter on the agent being active', async () => {
      const { ana, beto, carla } = s.a.agents
      await setActive(beto.id, false)
      try {
        const active = await get(`/v1/agents?group=${s.a.root.id}&active=true`)
        assert.equal(active.statusCode, 200)
        assert.deepEqual(ids(active.json()), [ana.id, carla.id].sort())
        const inactive = await get(`/v1/agents?group=${s.a.root.id}&active=false`)
        assert.deepEqual(ids(inactive.json()), [beto.id])
        // Without the filter both are listed.
        assert.deepEqual(
          ids((await get(`/v1/agents?group=${s.a.root.id}`)).json()),
          [ana.id, beto.id, carla.id].sort(),
        )
      } finally {
        await setActive(beto.id, true)
      }
    })

    test('group is required and active must be true or false: 400 with the field path', async () => {
      const missing = await get('/v1/agents')
      assert.equal(missing.statusCode, 400)
      assert.equal(missing.json().code, 'SCHEMA_VALIDATION_FAILED')
      assert.ok(missing.json().details.some((d: { path: string }) => d.path === '/group'))
      const maybe = await get(`/v1/agents?group=${s.a.root.id}&active=maybe`)
      assert.equal(maybe.statusCode, 400)
      assert.equal(maybe.json().code, 'SCHEMA_VALIDATION_FAILED')
      const paths = maybe.json().details.map((d: { path: string }) => d.path)
      assert.ok(paths.length > 0)
      assert.ok(
        paths.every((p: string) => p === '/active'),
        paths.join(),
      )
    })

    test('a group outside the key subtree or unknown is 404', async () => {
      const outside = await get(`/v1/agents?group=${s.a.oeste.id}`, s.keys.norte)
      assert.equal(outside.statusCode, 404)
      assert.equal(outside.json().code, 'NOT_FOUND')
      assert.equal((await get(`/v1/agents?group=${s.a.root.id}`, s.keys.norte)).statusCode, 404)
      assert.equal((await get('/v1/agents?group=aaaaaaaaaaaaaaaaaaaaaaaa')).statusCode, 404)
      assert.equal((await get(`/v1/agents?group=${s.b.root.id}`)).statusCode, 404)
      // The same key still sees its own subtree.
      assert.equal((await get(`/v1/agents?group=${s.a.desk.id}`, s.keys.norte)).statusCode, 200)
    })
  })

  describe('GET /agents/{agentId}/is-working', () => {
    const working = async (agentId: string, key = s.keys.all) => {
      const res = await get(`/v1/agents/${agentId}/is-working`, key)
      assert.equal(res.statusCode, 200, res.body)
      assert.deepEqual(Object.keys(res.json()), ['working'])
      return res.json().working as boolean
    }

    test('an online agent of a group without office hours is working; an offline one is not', async () => {
      assert.equal(await working(s.a.agents.ana.id), true)
      assert.equal(await working(s.a.agents.beto.id), false)
    })

    test("office hours are read in the agent's group time zone through the injected clock", async () => {
      // Oeste: Mondays 09:00–18:00 in Mexico City (UTC-6 all year since 2022).
      const { ana, carla } = s.a.agents
      try {
        t.clock.now = Date.parse('2026-11-23T16:00:00Z') // Monday 10:00 in Mexico City
        assert.equal(await working(carla.id), true)
        t.clock.now = Date.parse('2026-11-23T14:30:00Z') // Monday 08:30: not open yet
        assert.equal(await working(carla.id), false)
        t.clock.now = Date.parse('2026-11-24T00:30:00Z') // Monday 18:30: closed
        assert.equal(await working(carla.id), false)
        t.clock.now = Date.parse('2026-11-24T16:00:00Z') // Tuesday 10:00: closed all day
        assert.equal(await working(carla.id), false)
        assert.equal(await working(ana.id), true) // Norte has no office hours
      } finally {
        t.clock.now = Date.now()
      }
    })

    test('a deactivated agent is not working even when marked online', async () => {
      const { ana } = s.a.agents
      await setActive(ana.id, false)
      try {
        assert.equal(await working(ana.id), false)
      } finally {
        await setActive(ana.id, true)
      }
    })

    test('a malformed id is 400 INVALID_ID', async () => {
      const res = await get('/v1/agents/not-an-id/is-working')
      assert.equal(res.statusCode, 400)
      assert.equal(res.json().code, 'INVALID_ID')
      assert.equal(res.json().message, 'Invalid agentId')
    })

    test('an unknown agent, an administrator, another account agent or one outside the subtree is 404', async () => {
      const cases = [
        ['unknown', 'aaaaaaaaaaaaaaaaaaaaaaaa', s.keys.all],
        ['administrator', s.a.admin.id, s.keys.all],
        ['account B agent', s.b.agent.id, s.keys.all],
        ['Oeste agent, Norte key', s.a.agents.carla.id, s.keys.norte],
      ] as const
      for (const [name, agentId, key] of cases) {
        const res = await get(`/v1/agents/${agentId}/is-working`, key)
        assert.equal(res.statusCode, 404, name)
        assert.equal(res.json().code, 'NOT_FOUND', name)
      }
      // Account B's own key does see its agent: the 404 above is about who asks.
      assert.equal(await working(s.b.agent.id, s.keys.otherAccount), true)
    })
  })
})
