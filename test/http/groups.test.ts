import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { type Seed, seed } from '../seed.js'

describe(`groups routes (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
  })
  after(() => t.close())

  const get = (url: string, key = s.keys.all) =>
    t.app.inject({ method: 'GET', url, headers: { 'x-api-key': key } })

  test('GET /groups lists the key group and its descendants with their lineage', async () => {
    const res = await get('/v1/groups')
    assert.equal(res.statusCode, 200)
    const groups = res.json() as { id: string; ancestors: string[]; descendants: string[]; parent?: string }[]
    assert.deepEqual(
      groups.map((g) => g.id).sort(),
      [s.a.root.id, s.a.norte.id, s.a.desk.id, s.a.oeste.id].sort(),
    )
    const desk = groups.find((g) => g.id === s.a.desk.id)
    assert.deepEqual(desk?.ancestors, [s.a.root.id, s.a.norte.id])
    assert.equal(desk?.parent, s.a.norte.id)
    const root = groups.find((g) => g.id === s.a.root.id)
    assert.deepEqual(root?.descendants.sort(), [s.a.norte.id, s.a.desk.id, s.a.oeste.id].sort())
    assert.equal(root?.parent, undefined)
  })

  test('a key assigned to a child group sees only that subtree', async () => {
    const res = await get('/v1/groups', s.keys.norte)
    assert.deepEqual(
      (res.json() as { id: string }[]).map((g) => g.id).sort(),
      [s.a.norte.id, s.a.desk.id].sort(),
    )
    assert.equal((await get(`/v1/group/${s.a.oeste.id}`, s.keys.norte)).statusCode, 404)
    assert.equal((await get(`/v1/group/${s.a.root.id}`, s.keys.norte)).statusCode, 404)
  })

  test('GET /group/{id} returns the node with inherited settings', async () => {
    const res = await get(`/api/v1/group/${s.a.desk.id}`)
    assert.equal(res.statusCode, 200)
    const node = res.json()
    assert.equal(node.name, 'Desk Mercado Libre')
    assert.deepEqual(node.type, ['marketplace'])
    assert.equal(node.countryCode, 'AR')
    assert.equal(node.timezone, 'America/Argentina/Buenos_Aires')
  })

  test('a malformed group id is 400 INVALID_ID; an unknown one is 404', async () => {
    const bad = await get('/v1/group/not-an-id')
    assert.equal(bad.statusCode, 400)
    assert.equal(bad.json().code, 'INVALID_ID')
    assert.equal(bad.json().message, 'Invalid groupId')
    const missing = await get('/v1/group/aaaaaaaaaaaaaaaaaaaaaaaa')
    assert.equal(missing.statusCode, 404)
    assert.equal(missing.json().code, 'NOT_FOUND')
  })

  test('GET /group/{id}/agents/online lists online agents of the subtree and the office-hours state', async () => {
    const res = await get(`/v1/group/${s.a.root.id}/agents/online`)
    assert.equal(res.statusCode, 200)
    const body = res.json()
    assert.equal(body.officeHours, true) // the root group has no office hours: always open
    assert.deepEqual(
      body.agents.map((a: { id: string }) => a.id).sort(),
      [s.a.agents.ana.id, s.a.agents.carla.id].sort(),
    )
    const desk = (await get(`/v1/group/${s.a.desk.id}/agents/online`)).json()
    assert.deepEqual(desk.agents, [])
  })

  test('office hours are read in the group time zone through the injected clock', async () => {
    // Oeste: Mondays 09:00–18:00 in Mexico City (UTC-6 all year since 2022).
    t.clock.now = Date.parse('2026-11-23T16:00:00Z') // Monday 10:00 in Mexico City
    assert.equal((await get(`/v1/group/${s.a.oeste.id}/agents/online`)).json().officeHours, true)
    assert.equal((await get(`/v1/groups/${s.a.oeste.id}/is-working`)).json().working, true)
    t.clock.now = Date.parse('2026-11-24T16:00:00Z') // Tuesday: closed
    assert.equal((await get(`/v1/group/${s.a.oeste.id}/agents/online`)).json().officeHours, false)
    assert.equal((await get(`/v1/groups/${s.a.oeste.id}/is-working`)).json().working, false)
    t.clock.now = Date.now()
  })

  test('GET /groups/{id}/is-working is true only when some agent of the subtree works', async () => {
    assert.equal((await get(`/v1/groups/${s.a.norte.id}/is-working`)).json().working, true) // ana
    assert.equal((await get(`/v1/groups/${s.a.desk.id}/is-working`)).json().working, false) // beto is offline
  })
})
