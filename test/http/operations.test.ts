import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { VERSION } from '../../src/version.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { type Seed, seed } from '../seed.js'

describe(`OpenAPI, docs, health and metrics (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
  })
  after(() => t.close())

  test('/openapi.json is OpenAPI 3.1 with every API route, its scope and its security', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/openapi.json' })
    assert.equal(res.statusCode, 200)
    const doc = res.json()
    assert.equal(doc.openapi, '3.1.0')
    // Ventas's own version, not Fastify's (which `app.version` is).
    assert.equal(doc.info.version, VERSION)
    const expected = {
      '/v1/checkCredentials': undefined,
      '/v1/integration': null,
      '/v1/integrations': null,
      '/v1/industries': null,
      '/v1/agents': 'prospects:read',
      '/v1/agents/{agentId}/is-working': 'prospects:read',
      '/v1/groups': 'prospects:read',
      '/v1/group/{groupId}': 'prospects:read',
      '/v1/group/{groupId}/agents/online': 'prospects:read',
      '/v1/groups/{groupId}/is-working': 'prospects:read',
    }
    for (const [path, scope] of Object.entries(expected)) {
      const operation = doc.paths[path]?.get
      assert.ok(operation, `${path} is documented`)
      if (scope === undefined) continue
      assert.equal(operation['x-scope'], scope, path)
      assert.match(operation.description, scope ? new RegExp(`Scope:\\*\\* \`${scope}\``) : /any valid key/)
      assert.equal(operation.security.length, 4)
      assert.ok(operation.responses['401'] && operation.responses['403'])
    }
    assert.ok(
      !Object.keys(doc.paths).some((p) => p.startsWith('/api/v1')),
      'the /api/v1 aliases are described, not repeated',
    )
    assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), [
      'apiKeyQuery',
      'apiToken',
      'bearer',
      'xApiKey',
    ])
    assert.ok(doc.components.schemas.Error)
  })

  test('/docs serves the UI from local files only (no CDN)', async () => {
    const page = await t.app.inject({ method: 'GET', url: '/docs/' })
    assert.equal(page.statusCode, 200)
    assert.match(page.body, /swagger-ui/)
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string)
    assert.ok(assets.length > 0)
    for (const asset of assets) {
      assert.ok(!/^(https?:)?\/\//.test(asset), `${asset} is local`)
      const url = asset.startsWith('/') ? asset : `/docs/${asset.replace(/^\.\//, '')}`
      assert.equal((await t.app.inject({ method: 'GET', url })).statusCode, 200, url)
    }
  })

  test('/health answers while /ready checks the database and migrations', async () => {
    assert.deepEqual((await t.app.inject({ method: 'GET', url: '/health' })).json(), { status: 'ok' })
    const ready = await t.app.inject({ method: 'GET', url: '/ready' })
    assert.equal(ready.statusCode, 200)
    assert.equal(ready.json().status, 'ready')
  })

  test('/metrics exposes request counts by route pattern and status', async () => {
    await t.app.inject({
      method: 'GET',
      url: `/v1/group/${s.a.norte.id}`,
      headers: { 'x-api-key': s.keys.all },
    })
    await t.app.inject({ method: 'GET', url: '/v1/groups' })
    const res = await t.app.inject({ method: 'GET', url: '/metrics' })
    assert.equal(res.statusCode, 200)
    assert.match(String(res.headers['content-type']), /text\/plain/)
    assert.match(
      res.body,
      /ventas_http_request_duration_seconds_count\{method="GET",route="\/v1\/group\/:groupId",status="200"\} 1/,
    )
    assert.match(
      res.body,
      /ventas_http_request_duration_seconds_count\{method="GET",route="\/v1\/groups",status="401"\} 1/,
    )
    assert.match(res.body, /process_resident_memory_bytes/)
  })
})
