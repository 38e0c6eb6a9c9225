import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { buildApp } from '../../src/app.js'
import { ALL_SCOPES } from '../../src/domain/scopes.js'
import { createIntegration } from '../../src/services/access.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { type Seed, seed } from '../seed.js'

/** VENTAS_RATE_LIMIT=3:3 → a 1-second window admitting 3 requests per integration. */
describe(`rate limit per integration (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  before(async () => {
    t = await createTestApp({ env: { VENTAS_RATE_LIMIT: '3:3' } })
    s = await seed(t.db, t.secretKey)
  })
  after(() => t.close())

  const get = (app: TestContext['app'], key: string) =>
    app.inject({ method: 'GET', url: '/v1/integration', headers: { 'x-api-key': key } })

  test('the request past the allowance is 429 RATE_LIMITED with Retry-After and RateLimit-* headers', async () => {
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) {
      const ok = await get(t.app, s.keys.all)
      statuses.push(ok.statusCode)
      assert.equal(ok.headers['ratelimit-limit'], '3')
      assert.equal(ok.headers['ratelimit-remaining'], String(2 - i))
    }
    assert.deepEqual(statuses, [200, 200, 200])
    const refused = await get(t.app, s.keys.all)
    assert.equal(refused.statusCode, 429)
    assert.equal(refused.json().code, 'RATE_LIMITED')
    assert.equal(refused.json().requestId, refused.headers['x-request-id'])
    assert.ok(Number(refused.headers['retry-after']) >= 1)
    assert.equal(refused.headers['ratelimit-remaining'], '0')
    assert.ok(refused.headers['ratelimit-reset'] !== undefined)
  })

  test('each integration has its own allowance, and both prefixes share one', async () => {
    assert.equal((await get(t.app, s.keys.norte)).statusCode, 200)
    const viaAlias = await t.app.inject({
      method: 'GET',
      url: '/api/v1/integration',
      headers: { 'x-api-key': s.keys.all },
    })
    assert.equal(viaAlias.statusCode, 429)
  })

  test('requests without a valid key are refused by auth and never counted', async () => {
    for (let i = 0; i < 5; i++) {
      assert.equal(
        (await t.app.inject({ method: 'GET', url: '/v1/integration', headers: { 'x-api-key': 'vk_nope' } }))
          .statusCode,
        401,
      )
    }
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/health' })).headers['ratelimit-limit'],
      undefined,
    )
  })

  test("an integration's own rate overrides the default", async () => {
    const { key } = await createOwn(1)
    assert.equal((await get(t.app, key)).statusCode, 200)
    assert.equal((await get(t.app, key)).statusCode, 429)
  })

  async function createOwn(rateLimit: number) {
    const created = await createIntegration(
      t.db,
      t.secretKey,
      {
        accountId: s.a.account.id,
        groupId: s.a.root.id,
        name: `slow ${rateLimit}`,
        scopes: ALL_SCOPES,
        rateLimit,
      },
      'test',
    )
    assert.ok(created.ok)
    return created.value
  }

  test('with REDIS_URL, two API processes share the counters', {
    skip: !process.env.REDIS_URL && 'REDIS_URL is not set',
  }, async () => {
    const env = { ...t.config, redisUrl: process.env.REDIS_URL as string }
    const first = await buildApp({ config: env, db: t.db, secretKey: t.secretKey, logger: false })
    const second = await buildApp({ config: env, db: t.db, secretKey: t.secretKey, logger: false })
    try {
      const { key } = await createOwn(3)
      const statuses = []
      for (const app of [first, second, first, second]) statuses.push((await get(app, key)).statusCode)
      assert.deepEqual(statuses, [200, 200, 200, 429])
    } finally {
      await first.close()
      await second.close()
    }
  })
})
