import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { setImmediate as tick } from 'node:timers/promises'
import type { InjectOptions } from 'fastify'
import type { Result } from '../../src/domain/result.js'
import { ALL_SCOPES } from '../../src/domain/scopes.js'
import { createIntegration } from '../../src/services/access.js'
import { createGroup } from '../../src/services/directory.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { type Seed, seed } from '../seed.js'

function must<T>(result: Result<T>): T {
  if (!result.ok) throw new Error(result.message)
  return result.value
}

describe(`integration routes (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
  })
  after(() => t.close())

  const get = (url: string, key: string) =>
    t.app.inject({ method: 'GET', url, headers: { 'x-api-key': key } })
  const newKey = async (groupId: string, scopes: string[], name = 'Extra') =>
    must(
      await createIntegration(
        t.db,
        t.secretKey,
        { accountId: s.a.account.id, groupId, name, scopes },
        'test',
      ),
    )
  const lastUsedAt = async (id: string) =>
    (
      await t.db
        .selectFrom('integrations')
        .select('lastUsedAt')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    ).lastUsedAt

  describe('GET /integration and /integrations', () => {
    test('describe the integration the key belongs to, its group and its account', async () => {
      const res = await get('/v1/integration', s.keys.norte)
      assert.equal(res.statusCode, 200)
      assert.deepEqual(res.json(), {
        id: s.integrations.norte.id,
        name: 'Norte CRM',
        providerKey: `api.${ALL_SCOPES.join('_')}`,
        group: 'Sucursal Norte',
        groupId: s.a.norte.id,
        account: 'Autos del Sur',
        accountId: s.a.account.id,
        scopes: ALL_SCOPES,
      })
    })

    test('providerKey lists the scopes in canonical order, whatever order they were chosen in', async () => {
      const { integration, key } = await newKey(s.a.root.id, ['prospects:read', 'leads:write'])
      const body = (await get('/api/v1/integration', key)).json()
      assert.equal(body.id, integration.id)
      assert.equal(body.providerKey, 'api.leads:write_prospects:read')
      assert.deepEqual([...body.scopes].sort(), ['leads:write', 'prospects:read'])
      assert.equal((await get('/v1/integration', s.keys.leadsOnly)).json().providerKey, 'api.leads:write')
    })

    test('/integrations is the same integration as a one-element list', async () => {
      for (const key of [s.keys.all, s.keys.leadsOnly]) {
        const one = await get('/v1/integration', key)
        const list = await get('/v1/integrations', key)
        assert.equal(list.statusCode, 200)
        assert.deepEqual(list.json(), [one.json()])
      }
      assert.notDeepEqual(
        (await get('/v1/integrations', s.keys.all)).json(),
        (await get('/v1/integrations', s.keys.otherAccount)).json(),
      )
    })
  })

  describe('GET /industries', () => {
    test("lists the industries of the key's group", async () => {
      const res = await get('/v1/industries', s.keys.leadsOnly)
      assert.equal(res.statusCode, 200)
      assert.deepEqual(
        (res.json() as { name: string }[]).sort((a, b) => a.name.localeCompare(b.name)),
        ['insurance', 'real-estate', 'retail', 'saving-plan', 'vehicle'].map((name) => ({ name })),
      )
    })

    test('a group that enables fewer industries lists only those', async () => {
      const group = must(
        await createGroup(t.db, s.a.account.id, {
          name: 'Usados',
          parentId: s.a.root.id,
          industries: ['vehicle'],
        }),
      )
      const { key } = await newKey(group.id, ['leads:write'])
      assert.deepEqual((await get('/api/v1/industries', key)).json(), [{ name: 'vehicle' }])
    })
  })

  describe('lastUsedAt', () => {
    test('is set by a request and coalesced: more uses within the minute write nothing', async () => {
      const { integration, key } = await newKey(s.a.root.id, ['leads:write'], 'Coalesced')
      assert.equal(await lastUsedAt(integration.id), null)
      assert.equal((await get('/v1/integration', key)).statusCode, 200)
      await t.app.lastUsed.flush()
      const first = await lastUsedAt(integration.id)
      assert.equal(typeof first, 'number')
      assert.ok(Math.abs(Number(first) - Date.now()) < 60_000, `lastUsedAt ${first} is not recent`)
      for (let i = 0; i < 50; i++) assert.equal((await get('/v1/industries', key)).statusCode, 200)
      await t.app.lastUsed.flush()
      assert.equal(await lastUsedAt(integration.id), first)
    })

    test('a refused key is not recorded as used', async () => {
      assert.equal((await get('/v1/integration', s.keys.revoked)).statusCode, 401)
      await t.app.lastUsed.flush()
      assert.equal(await lastUsedAt(s.integrations.revoked.id), null)
    })
  })
})

describe(`API keys never reach the logs (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  const lines: string[] = []
  before(async () => {
    const stream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean))
        done()
      },
    })
    t = await createTestApp({ logger: { level: 'info', stream } })
    s = await seed(t.db, t.secretKey)
  })
  after(() => t.close())

  /** The log lines one request wrote (the request log is written once the response is sent). */
  async function logOf(request: InjectOptions) {
    const from = lines.length
    const res = await t.app.inject(request)
    await tick()
    return { res, logged: lines.slice(from) }
  }

  test('a key in the query string is logged as [redacted]', async () => {
    const unknown = 'vk_notAKeyButSecretAllTheSame0123456789abcdef'
    for (const [url, status] of [
      [`/v1/integration?api-key=${s.keys.all}`, 200],
      [`/api/v1/agents?group=${s.a.root.id}&api-key=${s.keys.all}`, 200],
      [`/v1/checkCredentials?api-key=${s.keys.all}`, 200],
      [`/v1/groups?api-key=${s.keys.revoked}`, 401],
      [`/v1/groups?api-key=${unknown}`, 401],
    ] as const) {
      const { res, logged } = await logOf({ method: 'GET', url })
      assert.equal(res.statusCode, status, url)
      assert.ok(logged.length > 0, `nothing logged for ${url}`)
      assert.ok(
        logged.some((line) => line.includes('api-key=[redacted]')),
        `no redacted URL for ${url}`,
      )
      for (const key of [s.keys.all, s.keys.revoked, unknown]) {
        assert.ok(!logged.some((line) => line.includes(key)), `the key leaked: ${logged.join('\n')}`)
      }
    }
  })

  test('a key in any header is never logged', async () => {
    for (const headers of [
      { 'x-api-token': s.keys.all },
      { 'x-api-key': s.keys.all },
      { authorization: `Bearer ${s.keys.all}` },
      { 'x-api-key': s.keys.revoked },
    ]) {
      const { res, logged } = await logOf({ method: 'GET', url: '/v1/integration', headers })
      assert.ok([200, 401].includes(res.statusCode))
      assert.ok(logged.length > 0)
      for (const key of [s.keys.all, s.keys.revoked]) {
        assert.ok(!logged.some((line) => line.includes(key)), `the key leaked: ${logged.join('\n')}`)
      }
    }
  })

  test('a key sent under a percent-encoded parameter name is redacted too', async () => {
    // `api%2Dkey` decodes to `api-key`: the server accepts it, so the log must hide it as well.
    for (const name of ['api%2Dkey', 'api%2dkey', '%61pi-key']) {
      const { res, logged } = await logOf({ method: 'GET', url: `/v1/integration?${name}=${s.keys.all}` })
      assert.equal(res.statusCode, 200, name)
      assert.ok(logged.length > 0)
      assert.ok(!logged.some((line) => line.includes(s.keys.all)), `the key leaked: ${logged.join('\n')}`)
    }
  })
})
