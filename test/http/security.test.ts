import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import { API_PREFIXES, V2_PREFIXES } from '../../src/app.js'
import { generateApiKey } from '../../src/domain/api-key.js'
import { ALL_INDUSTRIES } from '../../src/domain/industries.js'
import type { Scope } from '../../src/domain/scopes.js'
import { subscribe } from '../../src/services/subscriptions.js'
import { dispatchEvents } from '../../src/webhooks/dispatcher.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { ingest, type Seed, seed } from '../seed.js'

/**
 * The shared security suite (style.md habit 6: "who is kept out"): every authenticated route of
 * the API is listed once below and runs every auth case. A route the app registers under /v1 but
 * this table does not list fails the coverage test, so a new route cannot skip the suite.
 */
type Route = {
  /** As the OpenAPI document spells it, without the prefix. */
  path: string
  /** A URL (without the prefix) that account A's root key may call with success. */
  url: (s: Seed) => string
  /** The scope the route needs; null when any valid key will do. */
  scope: Scope | null
  /** The URL names account A's ids (path or `group` query): account B must get 404. */
  namesIds: boolean
  /** GET unless said; a POST sends `body`. */
  method?: 'GET' | 'POST' | 'PATCH' | 'DELETE'
  body?: (s: Seed) => object
  /** Served under /v1 and /api/v1 (default) or under /v2 and /api/v2. */
  version?: 1 | 2
  /** For a route that uses up what it acts on (DELETE): makes a fresh URL for each successful call. */
  prepare?: (s: Seed) => Promise<string>
  /** The success status when it is not 200 (202 for v2 POSTs). */
  status?: number
}

const lead = { utmSource: 'security-suite', firstName: 'Sofía', phones: ['+54 9 11 5555-0101'] }
const leadRoutes: Route[] = ALL_INDUSTRIES.flatMap((industry): Route[] => [
  {
    path: `/lead/${industry}`,
    url: () => `/lead/${industry}`,
    scope: 'leads:write',
    namesIds: false,
    method: 'POST',
    body: () => lead,
  },
  {
    path: `/leads/${industry}`,
    url: () => `/leads/${industry}`,
    scope: 'leads:write',
    namesIds: false,
    method: 'POST',
    body: () => lead,
    version: 2,
  },
  {
    path: `/leads/${industry}/batch`,
    url: () => `/leads/${industry}/batch`,
    scope: 'leads:write',
    namesIds: false,
    method: 'POST',
    body: () => ({ leads: [lead] }),
    version: 2,
  },
])

const ROUTES: Route[] = [
  { path: '/integration', url: () => '/integration', scope: null, namesIds: false },
  { path: '/integrations', url: () => '/integrations', scope: null, namesIds: false },
  { path: '/industries', url: () => '/industries', scope: null, namesIds: false },
  { path: '/agents', url: (s) => `/agents?group=${s.a.norte.id}`, scope: 'prospects:read', namesIds: true },
  {
    path: '/agents/{agentId}/is-working',
    url: (s) => `/agents/${s.a.agents.ana.id}/is-working`,
    scope: 'prospects:read',
    namesIds: true,
  },
  { path: '/groups', url: () => '/groups', scope: 'prospects:read', namesIds: false },
  { path: '/group/{groupId}', url: (s) => `/group/${s.a.norte.id}`, scope: 'prospects:read', namesIds: true },
  {
    path: '/group/{groupId}/agents/online',
    url: (s) => `/group/${s.a.norte.id}/agents/online`,
    scope: 'prospects:read',
    namesIds: true,
  },
  {
    path: '/groups/{groupId}/is-working',
    url: (s) => `/groups/${s.a.norte.id}/is-working`,
    scope: 'prospects:read',
    namesIds: true,
  },
  { path: '/leads/categories', url: () => '/leads/categories', scope: 'leads:write', namesIds: false },
  { path: '/leads/defaults', url: () => '/leads/defaults', scope: 'leads:write', namesIds: false },
  {
    path: '/leads/{leadId}',
    url: (s) => `/leads/${s.a.lead.id}`,
    scope: 'leads:write',
    namesIds: true,
    version: 2,
  },
  {
    path: '/prospect/{prospectId}',
    url: (s) => `/prospect/${s.a.lead.prospectId}`,
    scope: 'prospects:read',
    namesIds: true,
  },
  { path: '/prospects', url: () => '/prospects', scope: 'prospects:read', namesIds: false },
  {
    path: '/prospect-by',
    url: () => '/prospect-by?phoneNumber=%2B541145520371',
    scope: 'prospects:read',
    namesIds: false,
  },
  {
    path: '/prospect/{prospectId}',
    url: (s) => `/prospect/${s.a.lead.prospectId}`,
    scope: 'prospects:write',
    namesIds: true,
    method: 'PATCH',
    body: () => ({ label: 'hot' }),
  },
  {
    path: '/prospect/{prospectId}',
    url: (s) => `/prospect/${s.a.lead.prospectId}`,
    scope: 'prospects:write',
    namesIds: true,
    method: 'DELETE',
    prepare: async (s) =>
      `/prospect/${(await ingestFor(s, `+54 9 11 6000-${String(++fresh).padStart(4, '0')}`)).prospectId}`,
  },
  {
    path: '/prospect/{prospectId}/transfer',
    url: (s) => `/prospect/${s.a.lead.prospectId}/transfer`,
    scope: 'prospects:read',
    namesIds: true,
    method: 'POST',
    body: (s) => ({ group: s.a.norte.id }),
  },
  {
    path: '/prospect/{prospectId}/merges',
    url: (s) => `/prospect/${s.a.lead.prospectId}/merges`,
    scope: 'prospects:read',
    namesIds: true,
  },
  {
    path: '/prospects/interactions',
    url: () => '/prospects/interactions',
    scope: 'prospects:read',
    namesIds: false,
  },
  {
    path: '/prospect/{prospectId}/interactions',
    url: (s) => `/prospect/${s.a.lead.prospectId}/interactions`,
    scope: 'prospects:read',
    namesIds: true,
  },
  {
    path: '/prospect/{prospectId}/interactions',
    url: (s) => `/prospect/${s.a.lead.prospectId}/interactions`,
    scope: 'prospects:write',
    namesIds: true,
    method: 'POST',
    body: () => ({ type: 'note', content: 'security suite' }),
  },
  {
    path: '/prospect/{prospectId}/interaction/{interactionId}',
    url: (s) => `/prospect/${s.a.lead.prospectId}/interaction/${s.a.lead.interactionId}`,
    scope: 'prospects:read',
    namesIds: true,
  },
  {
    path: '/agents/{agentId}/response-time',
    url: (s) => `/agents/${s.a.agents.ana.id}/response-time`,
    scope: 'prospects:read',
    namesIds: true,
    method: 'POST',
  },
  {
    path: '/groups/{groupId}/response-time',
    url: (s) => `/groups/${s.a.norte.id}/response-time`,
    scope: 'prospects:read',
    namesIds: true,
    method: 'POST',
  },
  {
    path: '/notifications/topics',
    url: () => '/notifications/topics',
    scope: 'notifications',
    namesIds: false,
  },
  {
    path: '/notifications/subscriptions',
    url: () => '/notifications/subscriptions',
    scope: 'notifications',
    namesIds: false,
  },
  {
    path: '/notifications/subscriptions',
    url: () => '/notifications/subscriptions',
    scope: 'notifications',
    namesIds: false,
    method: 'POST',
    body: () => ({ topics: ['prospects'], callbackUrl: 'https://93.184.216.34/hooks?token=security' }),
    status: 201,
  },
  {
    path: '/notifications/subscriptions',
    url: () => '/notifications/subscriptions',
    scope: 'notifications',
    namesIds: false,
    method: 'DELETE',
  },
  {
    path: '/notifications/subscription/{subscriptionId}',
    url: (s) => `/notifications/subscription/${s.a.subscription.id}`,
    scope: 'notifications',
    namesIds: true,
  },
  {
    path: '/notifications/subscription/{subscriptionId}',
    url: (s) => `/notifications/subscription/${s.a.subscription.id}`,
    scope: 'notifications',
    namesIds: true,
    method: 'DELETE',
  },
  {
    path: '/notifications/subscription/{subscriptionId}/rotate-secret',
    url: (s) => `/notifications/subscription/${s.a.subscription.id}/rotate-secret`,
    scope: 'notifications',
    namesIds: true,
    method: 'POST',
    prepare: async (s) =>
      `/notifications/subscription/${(await freshDelivery(s)).subscriptionId}/rotate-secret`,
  },
  {
    path: '/notifications/subscription/{subscriptionId}/recover',
    url: (s) => `/notifications/subscription/${s.a.subscription.id}/recover?since=2026-01-01T00:00:00.000Z`,
    scope: 'notifications',
    namesIds: true,
    method: 'POST',
    prepare: async (s) =>
      `/notifications/subscription/${(await freshDelivery(s)).subscriptionId}/recover?since=2026-01-01T00:00:00.000Z`,
    status: 202,
  },
  {
    path: '/notifications/deliveries',
    url: () => '/notifications/deliveries',
    scope: 'notifications',
    namesIds: false,
  },
  {
    path: '/notifications/delivery/{deliveryId}',
    url: (s) => `/notifications/delivery/${s.a.deliveryId}`,
    scope: 'notifications',
    namesIds: true,
  },
  {
    path: '/notifications/delivery/{deliveryId}/redeliver',
    url: (s) => `/notifications/delivery/${s.a.deliveryId}/redeliver`,
    scope: 'notifications',
    namesIds: true,
    method: 'POST',
    prepare: async (s) => `/notifications/delivery/${(await freshDelivery(s)).deliveryId}/redeliver`,
    status: 202,
  },
  ...leadRoutes,
]

let fresh = 0
let ingestFor: (s: Seed, phone: string) => Promise<{ prospectId: string }>
/** An active subscription of account A's root with one delivery (the routes that need it active use it up). */
let freshDelivery: (s: Seed) => Promise<{ subscriptionId: string; deliveryId: string }>

const prefixesOf = (route: Route) => (route.version === 2 ? V2_PREFIXES : API_PREFIXES)
const methodOf = (route: Route) => route.method ?? 'GET'
/** A key that lacks the route's scope: leads:write routes get a read-only key, the others a leads-only key. */
const lacking = (route: Route, s: Seed) =>
  route.scope === 'leads:write' ? s.keys.readOnly : s.keys.leadsOnly

/** Routes under the API prefixes that authenticate themselves and so are not in ROUTES. */
const SELF_AUTHENTICATED = ['/checkCredentials']

const withQuery = (url: string, key: string) =>
  `${url}${url.includes('?') ? '&' : '?'}api-key=${encodeURIComponent(key)}`

/** The four places a key may travel (api.md §1.1), in their order of precedence. */
const TRANSPORTS = {
  query: (url: string, key: string) => ({ url: withQuery(url, key), headers: {} }),
  'X-API-Token': (url: string, key: string) => ({ url, headers: { 'x-api-token': key } }),
  'x-api-key': (url: string, key: string) => ({ url, headers: { 'x-api-key': key } }),
  'Authorization: Bearer': (url: string, key: string) => ({
    url,
    headers: { authorization: `Bearer ${key}` },
  }),
}

/** Every refusal has the contract's body, and its requestId is the X-Request-Id header. */
function assertError(res: LightMyRequestResponse, status: number, code: string, message?: string) {
  assert.equal(res.statusCode, status, res.body)
  const body = res.json()
  assert.equal(body.code, code)
  assert.equal(typeof body.message, 'string')
  assert.ok(body.message.length > 0)
  if (message !== undefined) assert.equal(body.message, message)
  assert.equal(typeof body.requestId, 'string')
  assert.equal(body.requestId, res.headers['x-request-id'])
}

/** `GET /v1/agents/:agentId/is-working` etc., read from Fastify's route tree with its methods. */
function registeredRoutes(tree: string): { method: string; path: string }[] {
  const stack: string[] = []
  const routes: { method: string; path: string }[] = []
  for (const line of tree.split('\n')) {
    const match = /^([│ ]*)[├└]── (\S+)(?: \(([^)]*)\))?/.exec(line)
    if (!match) continue
    const depth = (match[1] ?? '').length / 4
    stack.length = depth
    stack.push(match[2] ?? '')
    for (const method of (match[3] ?? '').split(', ').filter((m) => m && m !== 'HEAD')) {
      routes.push({ method, path: stack.join('') })
    }
  }
  return routes
}

describe(`security of every authenticated route (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  before(async () => {
    // The suite sends a few hundred requests with one key in about a second; the rate limit is
    // not what it tests (rate-limit.test.ts does), so it is raised out of the way.
    t = await createTestApp({ env: { VENTAS_RATE_LIMIT: '100000' } })
    s = await seed(t.db, t.secretKey)
    ingestFor = (seeded, phone) =>
      ingest(t.db, seeded.integrations.all, seeded.a.root, { utmSource: 'security', phones: [phone] })
    freshDelivery = async (seeded) => {
      const subscription = await subscribe(
        t.db,
        seeded.integrations.all,
        { topics: ['leads'], callbackUrl: 'https://93.184.216.34/hooks' },
        t.secretKey,
        Date.now(),
      )
      fresh += 1
      await ingestFor(seeded, `+54 9 11 4000-${String(fresh).padStart(4, '0')}`)
      await dispatchEvents(t.db, Date.now())
      const delivery = await t.db
        .selectFrom('deliveries')
        .select('id')
        .where('subscriptionId', '=', subscription.id)
        .executeTakeFirstOrThrow()
      return { subscriptionId: subscription.id, deliveryId: delivery.id }
    }
  })
  after(() => t.close())

  /** The URL of a successful call: a fresh one for routes that use up what they act on. */
  const urlOf = async (route: Route) => (route.prepare ? route.prepare(s) : route.url(s))

  const get = (url: string, headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'GET', url, headers })
  /** Calls the route the way the table says: its method, and its body for a POST. */
  const call = (route: Route, url: string, headers: Record<string, string> = {}) =>
    route.body
      ? t.app.inject({ method: methodOf(route), url, headers, payload: route.body(s) })
      : t.app.inject({ method: methodOf(route), url, headers })
  const success = (route: Route) =>
    route.status ?? (route.version === 2 && route.method === 'POST' ? 202 : 200)

  test('the table covers every route registered and documented under /v1 and /v2', async () => {
    const documented = (await get('/openapi.json')).json() as {
      paths: Record<string, Record<string, unknown>>
    }
    const openapi = Object.entries(documented.paths)
      .filter(([path]) => /^\/v[12]\//.test(path))
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
    const expected = [
      ...ROUTES.map((r) => `${methodOf(r)} /v${r.version ?? 1}${r.path}`),
      ...SELF_AUTHENTICATED.map((p) => `GET /v1${p}`),
    ].sort()
    assert.deepEqual(openapi.sort(), expected)
    const registered = registeredRoutes(t.app.printRoutes({ commonPrefix: false }))
    for (const [version, prefixes] of [
      [1, API_PREFIXES],
      [2, V2_PREFIXES],
    ] as const) {
      const wanted = expected
        .filter((e) => e.includes(` /v${version}/`))
        .map((e) => e.replace(`/v${version}/`, '/'))
      for (const prefix of prefixes) {
        const underPrefix = registered
          .filter((r) => r.path.startsWith(`${prefix}/`))
          .map((r) => `${r.method} ${r.path.slice(prefix.length).replace(/:(\w+)/g, '{$1}')}`)
        assert.deepEqual(underPrefix.sort(), wanted, `routes under ${prefix}`)
      }
    }
  })

  test('the scope each route documents is the scope the table tests', async () => {
    const { paths } = (await get('/openapi.json')).json() as {
      paths: Record<string, Record<string, { 'x-scope': string | null }>>
    }
    for (const route of ROUTES) {
      const operation = paths[`/v${route.version ?? 1}${route.path}`]?.[methodOf(route).toLowerCase()]
      assert.equal(operation?.['x-scope'], route.scope, route.path)
    }
  })

  for (const route of ROUTES) {
    describe(`${methodOf(route)} /v${route.version ?? 1}${route.path}`, () => {
      test('no key, an unknown key or a revoked key is 401 UNAUTHORIZED', async () => {
        for (const prefix of prefixesOf(route)) {
          const url = prefix + route.url(s)
          assertError(await call(route, url), 401, 'UNAUTHORIZED')
          assertError(await call(route, url, { 'x-api-key': generateApiKey() }), 401, 'UNAUTHORIZED')
          assertError(await call(route, url, { 'x-api-key': s.keys.revoked }), 401, 'UNAUTHORIZED')
          assertError(await call(route, withQuery(url, s.keys.revoked)), 401, 'UNAUTHORIZED')
        }
      })

      if (route.scope) {
        const scope = route.scope
        test(`a key without ${scope} is 403 INVALID_SCOPE`, async () => {
          for (const prefix of prefixesOf(route)) {
            const res = await call(route, prefix + route.url(s), { 'x-api-key': lacking(route, s) })
            assertError(res, 403, 'INVALID_SCOPE', `Invalid scope: this operation needs ${scope}`)
          }
        })
      } else {
        test('any valid key will do, even one with only leads:write', async () => {
          for (const prefix of prefixesOf(route)) {
            const res = await call(route, prefix + route.url(s), { 'x-api-key': s.keys.leadsOnly })
            assert.equal(res.statusCode, 200, res.body)
          }
        })
      }

      for (const [name, send] of Object.entries(TRANSPORTS)) {
        test(`a valid key is accepted in ${name}`, async () => {
          for (const prefix of prefixesOf(route)) {
            const { url, headers } = send(prefix + (await urlOf(route)), s.keys.all)
            const res = await call(route, url, headers)
            assert.equal(res.statusCode, success(route), `${url}: ${res.body}`)
          }
        })
      }

      test('the query key takes precedence over the headers, then X-API-Token, x-api-key, Bearer', async () => {
        const unknown = generateApiKey()
        const names = Object.keys(TRANSPORTS) as (keyof typeof TRANSPORTS)[]
        for (const [i, first] of names.entries()) {
          for (const later of names.slice(i + 1)) {
            // The transport of higher precedence decides, whichever of the two keys is valid.
            for (const [key, status] of [
              [s.keys.all, success(route)],
              [unknown, 401],
            ] as const) {
              const other = key === unknown ? s.keys.all : unknown
              const url = `${prefixesOf(route)[0]}${await urlOf(route)}`
              const a = TRANSPORTS[first](url, key)
              const b = TRANSPORTS[later](a.url, other)
              const res = await call(route, b.url, { ...b.headers, ...a.headers })
              assert.equal(
                res.statusCode,
                status,
                `${first} ${status === 401 ? 'unknown' : 'valid'} vs ${later}`,
              )
            }
          }
        }
      })

      test('a repeated or empty api-key query parameter fails; it never falls through to a header', async () => {
        const url = `${prefixesOf(route)[0]}${route.url(s)}`
        const sep = url.includes('?') ? '&' : '?'
        for (const query of [`api-key=${s.keys.all}&api-key=${s.keys.all}`, 'api-key=']) {
          const res = await call(route, `${url}${sep}${query}`, { 'x-api-key': s.keys.all })
          assertError(res, 401, 'UNAUTHORIZED')
        }
      })

      if (route.namesIds) {
        test("another account's key is 404 NOT_FOUND for account A's ids, never 403", async () => {
          for (const prefix of prefixesOf(route)) {
            const res = await call(route, prefix + route.url(s), { 'x-api-key': s.keys.otherAccount })
            assertError(res, 404, 'NOT_FOUND')
          }
        })
      }
    })
  }

  test('a refused caller learns nothing about the input: auth is decided before validation', async () => {
    for (const url of ['/v1/agents', '/v1/agents/not-an-id/is-working', '/v1/group/not-an-id']) {
      assertError(await get(url), 401, 'UNAUTHORIZED')
      assertError(await get(url, { 'x-api-key': s.keys.leadsOnly }), 403, 'INVALID_SCOPE')
    }
  })

  describe('GET /checkCredentials', () => {
    test('a valid key in the query is 200 with an empty body, whatever its scopes', async () => {
      for (const prefix of API_PREFIXES) {
        for (const key of [s.keys.all, s.keys.leadsOnly, s.keys.otherAccount]) {
          const res = await get(withQuery(`${prefix}/checkCredentials`, key))
          assert.equal(res.statusCode, 200, res.body)
          assert.equal(res.body, '')
        }
      }
    })

    test('a missing, unknown or revoked key is 401', async () => {
      for (const prefix of API_PREFIXES) {
        assertError(await get(`${prefix}/checkCredentials`), 401, 'UNAUTHORIZED')
        assertError(await get(`${prefix}/checkCredentials?api-key=`), 401, 'UNAUTHORIZED')
        for (const key of [generateApiKey(), s.keys.revoked]) {
          assertError(await get(withQuery(`${prefix}/checkCredentials`, key)), 401, 'UNAUTHORIZED')
        }
      }
    })
  })
})
