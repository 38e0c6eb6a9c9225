import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Updateable } from 'kysely'
import type { Result } from '../../src/domain/result.js'
import { ALL_SCOPES } from '../../src/domain/scopes.js'
import { createIntegration } from '../../src/services/access.js'
import { createAccount } from '../../src/services/directory.js'
import type { ProspectsTable } from '../../src/store/database.js'
import type { Group } from '../../src/store/groups.js'
import type { Integration } from '../../src/store/integrations.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { ingest, type Seed, seed } from '../seed.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
const NOW = Date.now()
const iso = (ms: number) => new Date(ms).toISOString()
const JOSE_DATA = { budget: 15000, city: 'Rosario', car: { brand: 'Fiat' } }
type Hand = Omit<Updateable<ProspectsTable>, 'additionalData'> & { additionalData?: object }
type Via = [Integration, Group]
type Query = Record<string, string> | [string, string][]
type Item = { id: string; firstName: string; accountId: string; created: string; additionalData?: unknown }

function must<T>(result: Result<T>): T {
  if (!result.ok) throw new Error(result.message)
  return result.value
}

/** RFC 4180: fields plain or quoted (`""` is a quote; commas, line breaks inside); CRLF ends a record. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [[]]
  for (const [, quoted, plain = '', end] of text.matchAll(/(?:"((?:[^"]|"")*)"|([^",\r\n]*))(,|\r\n|$)/gy)) {
    rows.at(-1)?.push(quoted === undefined ? plain : quoted.replaceAll('""', '"'))
    if (end === '\r\n') rows.push([])
    if (end === '') break
  }
  return rows.filter((row) => row.join('') !== '')
}

describe(`GET /prospects (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  const id: Record<string, string> = {}
  /** Account C's 250 prospects, four hours apart (41½ days), newest first. */
  const paged: string[] = []
  let cKey = ''

  /** A prospect from a real lead ("First Last", phones and emails); what leads cannot set, set by hand. */
  async function prospect(via: Via, at: number, name: string, contacts: string[], set: Hand = {}) {
    const [firstName, lastName] = name.split(/ (.*)/s)
    const emails = contacts.filter((c) => c.includes('@'))
    const phones = contacts.filter((c) => !c.includes('@'))
    const input = { utmSource: 'test', firstName, lastName, phones, emails }
    const { prospectId } = await ingest(t.db, via[0], via[1], input, at)
    const { additionalData, ...values } = set
    const row = additionalData ? { ...values, additionalData: JSON.stringify(additionalData) } : values
    if (Object.keys(row).length)
      await t.db.updateTable('prospects').set(row).where('id', '=', prospectId).execute()
    return prospectId
  }
  const integrationFor = async (accountId: string, groupId: string) => {
    const input = { accountId, groupId, name: 'list', scopes: ALL_SCOPES }
    return must(await createIntegration(t.db, t.secretKey, input, 'test'))
  }
  const list = (query: Query, key = s.keys.all, headers: Record<string, string> = {}) => {
    const url = `/v1/prospects?${new URLSearchParams(query)}`
    return t.app.inject({ method: 'GET', url, headers: { 'x-api-key': key, ...headers } })
  }
  const items = async (query: Query, key?: string): Promise<Item[]> => {
    const res = await list(query, key)
    assert.equal(res.statusCode, 200, res.body)
    return res.json()
  }
  const names = async (query: Query, key?: string) => (await items(query, key)).map((p) => p.firstName).sort()
  const ids = async (query: Query, key?: string) => (await items(query, key)).map((p) => p.id)
  /** A 400 with `code`, and with `path` the only field its details name. */
  async function refused(query: Query, code: string, path?: string) {
    const res = await list(query)
    const what = decodeURIComponent(String(new URLSearchParams(query)))
    assert.equal(res.statusCode, 400, `${what}: ${res.body}`)
    assert.equal(res.json().code, code, what)
    const paths = res.json().details?.map((d: { path: string }) => d.path)
    if (path) assert.deepEqual(paths, [path], what)
  }

  before(async () => {
    t = await createTestApp({ now: NOW })
    s = await seed(t.db, t.secretKey)
    const { ana, carla } = s.a.agents
    const root: Via = [s.integrations.all, s.a.root]
    const norte: Via = [s.integrations.norte, s.a.norte]
    // Account A (AR). The seed's Juan Pérez (root key, unclaimed, created now) is moved to Desk ML.
    const juan = s.a.lead.prospectId
    await t.db.updateTable('prospects').set({ groupId: s.a.desk.id }).where('id', '=', juan).execute()
    id.jose = await prospect(root, NOW - DAY, 'Jose Silva', ['+54 9 11 4444-1111', 'jose.silva@gmail.com'], {
      status: 'new',
      agentId: ana.id,
      assignedAt: NOW - DAY + HOUR,
      category: 'used',
      additionalData: JOSE_DATA,
    })
    id.marta = await prospect(norte, NOW - 2 * DAY, 'Marta Silvestre', ['011 4555-2222'], {
      status: 'followUp',
      agentId: carla.id,
      assignedAt: NOW - 2 * DAY + HOUR,
      transferredAt: NOW - 2 * DAY + 2 * HOUR,
      additionalData: { budget: 9000, city: 'Córdoba' },
    })
    id.pedro = await prospect(root, NOW - 3 * DAY, 'Pedro Gómez', ['pedro@gomez.com.ar'], {
      transferredAt: NOW - 12 * HOUR,
      additionalData: { budget: '20000', city: 'Buenos Aires' },
    })
    id.viejo = await prospect(root, NOW - 40 * DAY, 'Viejo', ['viejo@autos.com.ar'])

    // Account B (BR): contacts in other formats, a merge, a deletion, a name CSV must quote.
    const b: Via = [(await integrationFor(s.b.account.id, s.b.root.id)).integration, s.b.root]
    const rita = { status: 'new', agentId: s.b.agent.id, assignedAt: NOW - HOUR } as const
    id.ana = await prospect(b, NOW - HOUR, 'Ana', ['+5511987654321', 'ana.souza@gmail.com'], rita)
    id.bia = await prospect(b, NOW - 2 * HOUR, 'Bia', ['+55 21 3333-4444', '+55 21 99888-7766'])
    id.caio = await prospect(b, NOW - 3 * HOUR, 'Caio', ['+55 31 99999-0001'])
    id.davi = await prospect(b, NOW - 2.5 * HOUR, 'Davi', ['davi@loja.com.br'])
    const merger = await prospect(b, NOW - 1.5 * HOUR, 'Davi', ['+55 31 99999-0001', 'davi@loja.com.br'])
    assert.equal(merger, id.caio, 'Davi merged into the older Caio')
    id.eva = await prospect(b, NOW - 4 * HOUR, 'Eva', ['eva@loja.com.br'])
    const headers = { 'x-api-key': s.keys.otherAccount }
    const deleted = await t.app.inject({ method: 'DELETE', url: `/v1/prospect/${id.eva}`, headers })
    assert.equal(deleted.statusCode, 200, deleted.body)
    id.zoe = await prospect(b, NOW - 5 * HOUR, 'Zoe "Z", da\nSilva', ['zoe@loja.com.br'])

    // Account C (MX): only the paging data.
    const c = must(await createAccount(t.db, { name: 'Paginas', countryCode: 'MX' }))
    const cIntegration = await integrationFor(c.account.id, c.group.id)
    cKey = cIntegration.key
    for (let i = 249; i >= 0; i--)
      paged[i] = await prospect([cIntegration.integration, c.group], NOW - i * 4 * HOUR, '', [`c${i}@c.mx`])
  })
  after(() => t.close())

  test('equality filters, alone and combined', async () => {
    const { root, norte, desk } = s.a
    assert.deepEqual(await names({}), ['Jose', 'Juan', 'Marta', 'Pedro'])
    assert.deepEqual(await names({ status: 'new' }), ['Jose'])
    assert.deepEqual(await names({ status: 'unclaimed' }), ['Juan', 'Pedro'])
    assert.deepEqual(await names({ category: 'used' }), ['Jose'])
    assert.deepEqual(await names({ category: 'sales' }), ['Juan', 'Marta', 'Pedro'])
    assert.deepEqual(await names({ agent: s.a.agents.carla.id }), ['Marta'])
    assert.deepEqual(await names({ group: norte.id }), ['Marta'], 'the group itself, not its subtree')
    assert.deepEqual(await names({ group: desk.id }), ['Juan'])
    assert.deepEqual(await names({ group: root.id }), ['Jose', 'Pedro'])
    assert.deepEqual(await names({ withAgent: 'true' }), ['Jose', 'Marta'])
    assert.deepEqual(await names({ withAgent: 'false' }), ['Juan', 'Pedro'])
    assert.deepEqual(await names({ status: 'unclaimed', group: root.id }), ['Pedro'])
    assert.deepEqual(await names({ withAgent: 'true', search: 'silv', category: 'sales' }), ['Marta'])
    await refused({ status: 'lost' }, 'SCHEMA_VALIDATION_FAILED', '/status')
  })

  test('search: names fold case and accents, emails fold like Gmail, phones match in any form', async () => {
    assert.deepEqual(await names({ search: 'josé' }), ['Jose'])
    assert.deepEqual(await names({ search: 'SILV' }), ['Jose', 'Marta'])
    assert.deepEqual(await names({ search: 'GOMEZ' }), ['Pedro'])
    assert.deepEqual(await names({ search: 'a silv' }), ['Marta'], 'first and last name read as one text')
    assert.deepEqual(await names({ search: '%' }), [], 'LIKE wildcards are literal')
    assert.deepEqual(await names({ search: 'Jose.Silva+autos@googlemail.com' }), ['Jose'])
    assert.deepEqual(await names({ search: '011 15 4444-1111' }), ['Jose'])
    assert.deepEqual(await names({ phoneNumber: '+54 11 4444 1111' }), ['Jose'], 'without the mobile 9')
    assert.deepEqual(await names({ phoneNumber: 'abc' }), [], 'an unusable number matches nothing')
    const b = s.keys.otherAccount
    assert.deepEqual(await ids({ search: '(11) 98765-4321' }, b), [id.ana])
    assert.deepEqual(await ids({ search: '(11) 8765-4321' }, b), [id.ana], 'without the ninth digit')
    assert.deepEqual(await ids({ phoneNumber: '11 8765 4321' }, b), [id.ana])
    assert.deepEqual(await ids({ search: 'A.N.A.Souza+promo@googlemail.com' }, b), [id.ana])
    assert.deepEqual(await ids({ search: 'davi@loja.com.br' }, b), [id.caio], 'found in the survivor')
  })

  test('date families and their aliases; bounds are inclusive', async () => {
    const ago = (days: number) => iso(NOW - days * DAY)
    const cases: [Query, string[]][] = [
      [{ createdAfter: ago(2.5), createdBefore: ago(0.5) }, ['Jose', 'Marta']],
      [{ start: ago(2.5), end: ago(0.5) }, ['Jose', 'Marta']],
      [{ createdAfter: ago(2.5) }, ['Jose', 'Juan', 'Marta']],
      [{ start: ago(2.5) }, ['Jose', 'Juan', 'Marta']],
      [{ createdAfter: ago(1), createdBefore: ago(1) }, ['Jose']],
      [{ claimedAfter: ago(1.5) }, ['Jose']],
      [{ claimStart: ago(1.5) }, ['Jose']],
      [{ claimedBefore: ago(1.5) }, ['Marta']],
      [{ claimEnd: ago(1.5) }, ['Marta']],
      [{ transferredAfter: ago(1) }, ['Pedro']],
      [{ transferStart: ago(1) }, ['Pedro']],
      [{ transferredBefore: ago(1) }, ['Marta']],
      [{ transferEnd: ago(1) }, ['Marta']],
      [{ claimedAfter: ago(3), transferredAfter: ago(3) }, ['Marta']],
    ]
    for (const [query, expected] of cases)
      assert.deepEqual(await names(query), expected, JSON.stringify(query))
  })

  test('additionalData: six operators on numbers, text and nested fields; both spellings', async () => {
    const pairs = (...filters: string[]) => filters.map((f): [string, string] => ['additionalData[]', f])
    const data = (...filters: string[]) => names(pairs(...filters))
    assert.deepEqual(await data('budget=15000'), ['Jose'])
    assert.deepEqual(await data('budget>=15000'), ['Jose', 'Pedro'], "Pedro's is text: '20000'")
    assert.deepEqual(await data('budget>9000'), ['Jose', 'Pedro'])
    assert.deepEqual(await data('budget<=9000'), ['Marta'])
    assert.deepEqual(await data('budget<15000'), ['Marta'], '9000 < 15000 as numbers, not as text')
    assert.deepEqual(await data('city~osar'), ['Jose'])
    assert.deepEqual(await data('city = Córdoba'), ['Marta'])
    assert.deepEqual(await data('city<C'), ['Pedro'])
    assert.deepEqual(await data('car.brand=Fiat'), ['Jose'])
    assert.deepEqual(await data('budget>=9000', 'city~ba'), ['Marta'], 'conditions combine with AND')
    assert.deepEqual(await names([['additionalData', 'budget<=9000']]), ['Marta'])
    await refused(pairs('city~o', 'budget'), 'SCHEMA_VALIDATION_FAILED', '/additionalData/1')
    await refused(pairs("a')=1 or ('1"), 'SCHEMA_VALIDATION_FAILED', '/additionalData/0')
  })

  test('visibility: Norte’s key sees its subtree, B none of A; merged and deleted never listed', async () => {
    assert.deepEqual(await names({}, s.keys.norte), ['Juan', 'Marta'])
    assert.deepEqual(await names({ group: s.a.root.id }, s.keys.norte), [])
    assert.deepEqual(await names({ search: 'jose' }, s.keys.otherAccount), [])
    const b = await items({ limit: '5000' }, s.keys.otherAccount)
    assert.ok(
      b.every((p) => p.accountId === s.b.account.id),
      'only account B’s prospects',
    )
    const live = b.map((p) => p.id)
    assert.deepEqual(live, [id.ana, id.bia, id.caio, id.zoe], 'neither Davi (merged) nor Eva (deleted)')
    assert.deepEqual(await ids({ search: 'eva@loja.com.br', limit: '10' }, s.keys.otherAccount), [])
  })

  test('31-day rule: the default window, and what a range without limit may be', async () => {
    const ago = (days: number) => iso(NOW - days * DAY)
    assert.deepEqual(await names({}), ['Jose', 'Juan', 'Marta', 'Pedro'], 'Viejo is 40 days old')
    assert.ok((await names({ limit: '100' })).includes('Viejo'), 'with a limit there is no window')
    assert.deepEqual(await names({ start: ago(45), end: ago(35) }), ['Viejo'], 'a short range in the past')
    for (const query of [
      { createdAfter: ago(40), createdBefore: ago(0) },
      { claimStart: ago(33), claimEnd: ago(1) },
      { createdAfter: ago(1), createdBefore: ago(2) },
      { transferStart: ago(1), transferEnd: ago(2) },
      { createdAfter: ago(35) },
      { end: ago(35) },
    ] as Query[])
      await refused(query, 'INVALID_DATE_RANGE')
    for (const query of [
      { createdAfter: ago(40), createdBefore: ago(0), limit: '10' },
      { createdAfter: ago(45), limit: '10' },
    ] as Query[])
      assert.ok((await names(query)).includes('Viejo'), JSON.stringify(query))
  })

  test('a date that is not ISO 8601 is refused by name, limit or not', async () => {
    for (const [name, value] of [
      ['createdAfter', 'yesterday'],
      ['claimEnd', '2026-13-01'],
      ['transferStart', '2026-02-30'],
      ['createdBefore', '12'],
    ] as const)
      await refused({ [name]: value, limit: '10' }, 'SCHEMA_VALIDATION_FAILED', `/${name}`)
  })

  test('cursors: limit=40 pages through 250 prospects by before and by Link, newest first', async () => {
    const viaBefore: string[] = []
    for (let before = '', n = 0; n < 10; n++) {
      const page: Item[] = (await list({ limit: '40', ...(before ? { before } : {}) }, cKey)).json()
      viaBefore.push(...page.map((p) => p.id))
      if (page.length < 40) break
      before = page.at(-1)?.id ?? ''
    }
    assert.deepEqual(viaBefore, paged, 'no gaps, no repeats')
    const viaLink: Item[] = []
    const headers = { 'x-api-key': cKey }
    let pages = 0
    for (let url: string | undefined = '/api/v1/prospects?limit=40'; url && pages < 10; pages++) {
      const res: Awaited<ReturnType<typeof list>> = await t.app.inject({ method: 'GET', url, headers })
      assert.equal(res.statusCode, 200, res.body)
      viaLink.push(...res.json())
      url = /^<([^>]+)>; rel="next"$/.exec(String(res.headers.link ?? ''))?.[1]
    }
    assert.equal(pages, 7, 'six full pages link on, the seventh (10 items) does not')
    const linked = viaLink.map((p) => p.id)
    assert.deepEqual(linked, paged)
    const times = viaLink.map((p) => Date.parse(p.created))
    assert.ok(
      times.every((time, i) => i === 0 || time < (times[i - 1] as number)),
      'newest first',
    )
    assert.ok((times.at(-1) as number) < NOW - 41 * DAY, 'cursors reach past the 31-day window')

    assert.deepEqual(await ids({ limit: '40', after: paged[30] as string }, cKey), paged.slice(0, 30))
    const between = { limit: '100', after: paged[100] as string, before: paged[50] as string }
    assert.deepEqual(await ids(between, cKey), paged.slice(51, 100))
    await refused({ limit: '5001' }, 'SCHEMA_VALIDATION_FAILED', '/limit')
    await refused({ limit: '0' }, 'SCHEMA_VALIDATION_FAILED', '/limit')
  })

  test('CSV: by format or Accept, dotted columns, arrays joined with |, RFC 4180 quoting', async () => {
    const key = s.keys.otherAccount
    const res = await list({ format: 'csv' }, key)
    assert.equal(res.statusCode, 200, res.body)
    assert.match(String(res.headers['content-type']), /^text\/csv/)
    const [header = [], ...rows] = parseCsv(res.body)
    assert.ok(header.includes('agent.firstName') && !header.includes('agent'), header.join(','))
    assert.ok(
      rows.every((row) => row.length === header.length),
      'every row has every column',
    )
    const column = (name: string) => rows.map((row) => row[header.indexOf(name)])
    assert.deepEqual(column('id'), await ids({}, key), 'one row per item, in the same order')
    assert.deepEqual(column('firstName'), ['Ana', 'Bia', 'Caio', 'Zoe'])
    assert.deepEqual(column('lastName'), ['', '', '', '"Z", da\nSilva'], 'a quote, a comma and a line break')
    assert.deepEqual(column('agent.firstName'), ['rita', '', '', ''])
    assert.equal(column('phones')[1], '+552133334444|+5521998887766')

    const accepted = await list({}, key, { accept: 'text/csv' })
    assert.match(String(accepted.headers['content-type']), /^text\/csv/)
    assert.equal(accepted.body, res.body)
    const json = await list({ format: 'json' }, key, { accept: 'text/csv' })
    assert.match(String(json.headers['content-type']), /^application\/json/)
    assert.equal(json.json().length, 4)
  })

  test('additionalData appears only with prospects:readAdditionalData, in the list and by id', async () => {
    assert.deepEqual((await items({ search: 'jose' }))[0]?.additionalData, JOSE_DATA)
    const [listed] = await items({ search: 'jose' }, s.keys.readOnly)
    assert.equal(listed?.id, id.jose)
    assert.equal('additionalData' in (listed ?? {}), false, 'listed without additionalData')
    const one = (key: string) =>
      t.app.inject({ method: 'GET', url: `/v1/prospect/${id.jose}`, headers: { 'x-api-key': key } })
    assert.deepEqual((await one(s.keys.all)).json().additionalData, JOSE_DATA)
    const hidden = await one(s.keys.readOnly)
    assert.equal(hidden.json().id, id.jose, hidden.body)
    assert.equal('additionalData' in hidden.json(), false, 'read by id without additionalData')
  })

  test('GET /prospect-by matches after normalisation and answers [] for an unusable number', async () => {
    const by = async (phoneNumber: string, key = s.keys.otherAccount) => {
      const url = `/v1/prospect-by?${new URLSearchParams({ phoneNumber })}`
      const res = await t.app.inject({ method: 'GET', url, headers: { 'x-api-key': key } })
      assert.equal(res.statusCode, 200, res.body)
      return res.json().map((p: Item) => p.id)
    }
    assert.deepEqual(await by('(11) 8765-4321'), [id.ana])
    assert.deepEqual(await by('+55 11 98765 4321'), [id.ana])
    assert.deepEqual(await by('5511987654321@s.whatsapp.net'), [id.ana])
    assert.deepEqual(await by('abc'), [])
    assert.deepEqual(await by('(11) 0000-0000'), [])
    assert.deepEqual(await by('+55 11 98765 4321', s.keys.all), [], 'another account’s prospect')
    assert.deepEqual(await by('011 15 4444-1111', s.keys.all), [id.jose])
  })
})
