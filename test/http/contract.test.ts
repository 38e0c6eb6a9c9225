import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Type } from 'typebox'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { type Seed, seed } from '../seed.js'

/**
 * The error contract of api.md §1.3 through the real app. The body-parsing cases need a route
 * that takes a body, which this API does not have yet; the test adds one beside the API,
 * under the same error handler, with a schema shaped like a lead.
 */
describe(`error contract (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
  })
  after(() => t.close())

  const bodyRoute = async () => {
    const { buildApp } = await import('../../src/app.js')
    const app = await buildApp({ config: t.config, db: t.db, secretKey: t.secretKey, logger: false })
    app.post(
      '/echo',
      {
        schema: {
          body: Type.Object({ utmSource: Type.String(), phones: Type.Array(Type.String({ minLength: 3 })) }),
        },
      },
      async (request) => request.body,
    )
    await app.ready()
    return app
  }

  test('every error carries code, message and a requestId equal to the X-Request-Id header', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/groups' })
    assert.equal(res.statusCode, 401)
    const body = res.json()
    assert.equal(body.code, 'UNAUTHORIZED')
    assert.equal(typeof body.message, 'string')
    assert.equal(body.requestId, res.headers['x-request-id'])
  })

  test('a safe client request id is kept; an unsafe one is replaced', async () => {
    const kept = await t.app.inject({
      method: 'GET',
      url: '/health',
      headers: { 'x-request-id': 'lead-form-42' },
    })
    assert.equal(kept.headers['x-request-id'], 'lead-form-42')
    const replaced = await t.app.inject({
      method: 'GET',
      url: '/health',
      headers: { 'x-request-id': 'bad id <script>' },
    })
    assert.match(String(replaced.headers['x-request-id']), /^[0-9a-f-]{36}$/)
  })

  test('an unknown route is a JSON 404, without needing a key', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/does-not-exist' })
    assert.equal(res.statusCode, 404)
    assert.equal(res.json().code, 'NOT_FOUND')
    assert.match(String(res.headers['content-type']), /application\/json/)
  })

  test('schema failures list each problem with its path', async () => {
    const app = await bodyRoute()
    const res = await app.inject({
      method: 'POST',
      url: '/echo',
      payload: { phones: ['+5551987654321', 'x'] },
    })
    assert.equal(res.statusCode, 400)
    const body = res.json()
    assert.equal(body.code, 'SCHEMA_VALIDATION_FAILED')
    const paths = body.details.map((d: { path: string }) => d.path).sort()
    assert.deepEqual(paths, ['/phones/1', '/utmSource'])
    assert.ok(body.details.every((d: { message: string; in: string }) => d.message && d.in === 'body'))
    await app.close()
  })

  test('a body that is not JSON is 400 MALFORMED_JSON; another media type is 415', async () => {
    const app = await bodyRoute()
    const malformed = await app.inject({
      method: 'POST',
      url: '/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{"utmSource":',
    })
    assert.equal(malformed.statusCode, 400)
    assert.equal(malformed.json().code, 'MALFORMED_JSON')
    const media = await app.inject({
      method: 'POST',
      url: '/echo',
      headers: { 'content-type': 'text/xml' },
      payload: '<lead/>',
    })
    assert.equal(media.statusCode, 415)
    assert.equal(media.json().code, 'UNSUPPORTED_MEDIA_TYPE')
    await app.close()
  })

  test('a body over 1 MiB is 413 PAYLOAD_TOO_LARGE', async () => {
    const app = await bodyRoute()
    const payload = JSON.stringify({ utmSource: 'web', phones: ['x'.repeat(1024 * 1024)] })
    const res = await app.inject({
      method: 'POST',
      url: '/echo',
      headers: { 'content-type': 'application/json' },
      payload,
    })
    assert.equal(res.statusCode, 413)
    assert.equal(res.json().code, 'PAYLOAD_TOO_LARGE')
    await app.close()
  })

  test('a bug answers a generic 500 and keeps the stack out of the body', async () => {
    const { buildApp } = await import('../../src/app.js')
    const app = await buildApp({ config: t.config, db: t.db, secretKey: t.secretKey, logger: false })
    app.get('/boom', async () => {
      throw new Error('secret internal detail')
    })
    const res = await app.inject({ method: 'GET', url: '/boom' })
    assert.equal(res.statusCode, 500)
    assert.deepEqual(Object.keys(res.json()).sort(), ['code', 'message', 'requestId'])
    assert.equal(res.json().code, 'UNEXPECTED_ERROR')
    assert.ok(!res.body.includes('secret internal detail'))
    await app.close()
  })

  test('a storage outage answers 503 UNAVAILABLE with Retry-After', async () => {
    const { buildApp } = await import('../../src/app.js')
    const { connect } = await import('../../src/store/connect.js')
    // A database that refuses connections: nothing listens on port 1.
    const db = connect({ engine: 'postgres', url: 'postgres://ventas@127.0.0.1:1/ventas' }, { poolSize: 1 })
    const app = await buildApp({ config: t.config, db, secretKey: t.secretKey, logger: false })
    const res = await app.inject({ method: 'GET', url: '/v1/groups', headers: { 'x-api-key': s.keys.all } })
    assert.equal(res.statusCode, 503, res.body)
    assert.equal(res.json().code, 'UNAVAILABLE')
    assert.equal(res.headers['retry-after'], '5')
    const ready = await app.inject({ method: 'GET', url: '/ready' })
    assert.equal(ready.statusCode, 503)
    assert.match(ready.json().problems[0], /database unreachable/)
    await app.close()
    await db.destroy()
  })
})
