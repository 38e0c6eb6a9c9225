import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { LeadWorker } from '../../src/jobs/worker.js'
import { blockValue } from '../../src/store/accounts.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { type Seed, seed } from '../seed.js'

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../../shared/fixtures/leads/${name}`, import.meta.url), 'utf8'))

describe(`lead routes (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  let worker: LeadWorker
  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
    worker = new LeadWorker(t.db, { now: () => t.clock.now })
  })
  after(() => t.close())

  /** Account B (BR) takes the Brazilian fixtures; account A (AR) the Argentine ones. */
  const post = (
    url: string,
    payload: unknown,
    key = s.keys.otherAccount,
    headers: Record<string, string> = {},
  ) =>
    t.app.inject({
      method: 'POST',
      url,
      payload: payload as object,
      headers: { 'x-api-key': key, ...headers },
    })
  const get = (url: string, key = s.keys.otherAccount) =>
    t.app.inject({ method: 'GET', url, headers: { 'x-api-key': key } })

  describe('the shared fixtures end to end', () => {
    test('a web-form lead, then a WhatsApp id without the ninth digit: one prospect, the second merged', async () => {
      const first = await post('/v1/lead/retail', fixture('retail-webform.json'))
      assert.equal(first.statusCode, 200, first.body)
      const created = first.json()
      assert.equal(created.merged, false)
      assert.deepEqual(created.phones, ['+5551987654321'])
      assert.deepEqual(created.emails, ['ana.silva@gmail.com'])
      assert.equal(created.leads.length, 1)
      assert.equal(created.leads[0].source, 'google')
      assert.equal(created.leads[0].utmSource, 'google')
      assert.equal(created.leads[0].type, 'retail')
      assert.deepEqual(created.leads[0].phones, ['+55 51 987654321'], 'the lead keeps the phone as received')
      assert.equal(created.leads[0].product.price.currency, 'BRL', 'currency is stored upper-case')
      assert.match(created.leads[0].providerKey, /^api\.leads:write_/)

      const second = await post('/api/v1/lead/retail', fixture('whatsapp-inbound.json'))
      assert.equal(second.statusCode, 200, second.body)
      const merged = second.json()
      assert.equal(merged.id, created.id)
      assert.equal(merged.merged, true)
      assert.equal(merged.leads.length, 1, 'a merged response holds only the lead just sent')
      assert.equal(merged.leads[0].utmSource, 'WHATSAPP')
      assert.deepEqual(merged.phones, ['+5551987654321'], 'the variant folds into the phone already held')
      assert.equal(merged.interactions.length, 1)
      assert.equal(merged.interactions[0].via, 'whatsApp')
      assert.equal(merged.interactions[0].output.message.content, 'Oi! Ainda tem a geladeira?')

      const full = (await get(`/v1/prospect/${created.id}`)).json()
      assert.equal(full.leads.length, 2)
      assert.equal(full.firstName, 'Ana')
      assert.equal(full.lastName, 'Silva')
    })

    test('every industry fixture is accepted and processed into a prospect with its E.164 phones', async () => {
      const cases = [
        ['vehicle', 'vehicle-mercadolibre.json', s.keys.all, '+5491145520371', 'vehicle'],
        ['insurance', 'insurance-paypal.json', s.keys.all, '+525512345678', 'insurance'],
        ['saving-plan', 'saving-plan.json', s.keys.all, '+5493515551234', 'savingPlan'],
        ['real-estate', 'real-estate.json', s.keys.otherAccount, '+5511912345678', 'realEstate'],
      ] as const
      for (const [industry, file, key, phone, type] of cases) {
        const res = await post(`/v1/lead/${industry}`, fixture(file), key)
        assert.equal(res.statusCode, 200, `${file}: ${res.body}`)
        const body = res.json()
        assert.deepEqual(body.phones, [phone], file)
        assert.equal(body.leads[0].type, type)
      }
      const vehicle = (
        await post('/v1/lead/vehicle', fixture('vehicle-mercadolibre.json'), s.keys.all)
      ).json()
      assert.deepEqual(
        vehicle.leads[0].product.odometer,
        { amount: 42000, unit: 'km' },
        "the group's distance unit",
      )
      assert.deepEqual(vehicle.nin, [{ type: 'DNI', number: '30123456' }])
    })
  })

  describe('refusals', () => {
    test('utmSource is required (its alias source is enough); every problem names its field', async () => {
      const missing = await post('/v2/leads/retail', {
        firstName: 'Ana',
        phones: ['+55 51 98765-4321'],
        priority: 'high',
      })
      assert.equal(missing.statusCode, 400)
      assert.equal(missing.json().code, 'SCHEMA_VALIDATION_FAILED')
      assert.deepEqual(
        missing
          .json()
          .details.map((d: { path: string }) => d.path)
          .sort(),
        ['/priority'],
      )
      const noSource = await post('/v2/leads/retail', { firstName: 'Ana', phones: ['+55 51 98765-4321'] })
      assert.equal(noSource.statusCode, 400)
      assert.deepEqual(
        noSource.json().details.map((d: { path: string }) => d.path),
        ['/utmSource'],
      )
      const alias = await post('/v2/leads/retail', {
        source: 'web',
        medium: 'cpc',
        phones: ['+55 51 98765-4321'],
        unknownField: 1,
      })
      assert.equal(alias.statusCode, 202, alias.body)
    })

    test('unknown fields are dropped, not stored; a NUL character is refused on both engines', async () => {
      const res = await post('/v1/lead/retail', {
        utmSource: 'web',
        emails: ['campos@loja.com.br'],
        favouriteColour: 'blue',
        product: { make: 'Fiat', wheels: 4 },
      })
      assert.equal(res.statusCode, 200, res.body)
      const lead = res.json().leads[0]
      assert.equal(lead.favouriteColour, undefined)
      assert.deepEqual(lead.product, { make: 'Fiat' })
      const nul = await post('/v2/leads/retail', {
        utmSource: 'web',
        firstName: 'A\u0000B',
        emails: ['nul@loja.com.br'],
      })
      assert.equal(nul.statusCode, 400)
      assert.equal(nul.json().details[0].path, '/firstName')
    })

    test('an unknown category is 400; a known one and the default are taken', async () => {
      const unknown = await post('/v2/leads/retail', {
        utmSource: 'web',
        category: 'vip',
        emails: ['x@loja.com.br'],
      })
      assert.equal(unknown.statusCode, 400)
      assert.equal(unknown.json().details[0].path, '/category')
      const categories = (await get('/v1/leads/categories')).json()
      assert.deepEqual(categories, ['sales'])
      assert.deepEqual((await get('/v1/leads/defaults')).json(), { currency: 'BRL', distance: 'km' })
      assert.deepEqual((await get('/v1/leads/defaults', s.keys.all)).json(), {
        currency: 'ARS',
        distance: 'km',
      })
    })

    test('no usable contact is 422 UNPROCESSABLE_LEAD saying why for each contact; nothing is stored', async () => {
      const before = await countLeads()
      const res = await post('/v1/lead/retail', {
        utmSource: 'web',
        phones: ['9999999999', 'call me'],
        emails: ['noreply@loja.com.br'],
      })
      assert.equal(res.statusCode, 422)
      const body = res.json()
      assert.equal(body.code, 'UNPROCESSABLE_LEAD')
      assert.deepEqual(
        body.details.map((d: { path: string }) => d.path),
        ['/phones/0', '/phones/1', '/emails/0'],
      )
      assert.match(body.details[2].message, /placeholder/)
      const none = await post('/v2/leads/retail', { utmSource: 'web', firstName: 'Sem contato' })
      assert.equal(none.statusCode, 422)
      assert.equal(await countLeads(), before)
    })

    test('a recorded call is a contact on its own', async () => {
      const res = await post('/v1/lead/retail', {
        utmSource: 'phone',
        history: [{ type: 'call', duration: 61000, recordingUrl: 'https://rec.example.com/1' }],
      })
      assert.equal(res.statusCode, 200, res.body)
      assert.deepEqual(res.json().phones, [])
      assert.equal(res.json().interactions[0].output.call.duration, 61000)
    })
  })

  describe('v2: accept now, result later', () => {
    test('202 receipt, queued until the worker runs, then processed with its prospect', async () => {
      const res = await post('/api/v2/leads/retail', {
        utmSource: 'web',
        firstName: 'Bruno',
        phones: ['(21) 99876-5432'],
      })
      assert.equal(res.statusCode, 202)
      const receipt = res.json()
      assert.equal(receipt.status, 'queued')
      assert.equal(receipt.statusUrl, `/api/v2/leads/${receipt.id}`)
      assert.equal((await get(`/v2/leads/${receipt.id}`)).json().status, 'queued')
      while ((await worker.runOnce()) > 0) {}
      const status = (await get(`/v2/leads/${receipt.id}`)).json()
      assert.equal(status.status, 'processed')
      assert.equal(status.merged, false)
      assert.equal(status.processedAt, new Date(t.clock.now).toISOString())
      const prospect = (await get(`/v1/prospect/${status.prospectId}`)).json()
      assert.deepEqual(prospect.phones, ['+5521998765432'])
      const events = await t.db
        .selectFrom('events')
        .select(['topic', 'type'])
        .where('subjectId', 'in', [receipt.id, status.prospectId])
        .execute()
      assert.deepEqual(events.map((e) => `${e.topic}.${e.type}`).sort(), [
        'leads.processed',
        'prospects.created',
      ])
    })

    test('a lead left without a usable contact by the time it is processed is rejected, and says why', async () => {
      const res = await post('/api/v2/leads/retail', {
        utmSource: 'web',
        firstName: 'Nadia',
        phones: ['(11) 97654-3210'],
      })
      assert.equal(res.statusCode, 202)
      const { id } = res.json()
      await blockValue(t.db, s.b.account.id, 'phone', '+5511976543210')
      while ((await worker.runOnce()) > 0) {}
      const status = (await get(`/v2/leads/${id}`)).json()
      assert.equal(status.status, 'rejected')
      assert.equal(status.error.code, 'UNPROCESSABLE_LEAD')
      assert.match(status.error.message, /^No usable contact: /)
      assert.equal(status.processedAt, new Date(t.clock.now).toISOString())
      assert.equal(status.prospectId, undefined)
    })

    test("another account's lead id is 404, and so is a lead of a group outside the key's subtree", async () => {
      assert.equal((await get(`/v2/leads/${s.a.lead.id}`)).statusCode, 404)
      assert.equal((await get(`/v2/leads/${s.a.lead.id}`, s.keys.norte)).statusCode, 404)
      assert.equal((await get(`/v2/leads/${s.a.lead.id}`, s.keys.all)).statusCode, 200)
    })

    test('a batch validates each lead alone and commits the valid ones', async () => {
      const res = await post('/v2/leads/retail/batch', {
        leads: [
          { utmSource: 'csv', emails: ['lote1@loja.com.br'] },
          { emails: ['lote2@loja.com.br'] },
          { utmSource: 'csv', phones: ['12345'] },
          { utmSource: 'csv', phones: 'not a list' },
          { utmSource: 'csv', emails: ['lote1@loja.com.br'], firstName: 'Lote' },
        ],
      })
      assert.equal(res.statusCode, 202)
      const results = res.json().results
      assert.equal(results.length, 5)
      assert.equal(results[0].status, 'queued')
      assert.equal(results[1].error.code, 'SCHEMA_VALIDATION_FAILED')
      assert.equal(results[1].error.details[0].path, '/leads/1/utmSource')
      assert.equal(results[2].error.code, 'UNPROCESSABLE_LEAD')
      assert.equal(results[2].error.details[0].path, '/leads/2/phones/0')
      assert.equal(results[3].index, 3)
      assert.equal(results[4].status, 'queued')
      while ((await worker.runOnce()) > 0) {}
      const one = await get(`/v2/leads/${results[0].id}`)
      const five = await get(`/v2/leads/${results[4].id}`)
      assert.equal(
        one.json().prospectId,
        five.json().prospectId,
        'two leads of one email in one batch: one prospect',
      )
      const tooMany = await post('/v2/leads/retail/batch', {
        leads: Array.from({ length: 1001 }, () => ({ utmSource: 'x' })),
      })
      assert.equal(tooMany.statusCode, 400)
    })
  })

  describe('idempotency', () => {
    test('same Idempotency-Key and body → the same lead; a different body → 409', async () => {
      const body = { utmSource: 'web', emails: ['idem@loja.com.br'] }
      const headers = { 'idempotency-key': 'order-8812' }
      const first = await post('/v2/leads/retail', body, s.keys.otherAccount, headers)
      const again = await post('/v2/leads/retail', body, s.keys.otherAccount, headers)
      assert.equal(first.statusCode, 202)
      assert.equal(again.statusCode, 202)
      assert.equal(again.json().id, first.json().id)
      assert.equal(again.json().duplicate, true)
      const other = await post(
        '/v2/leads/retail',
        { ...body, firstName: 'Outra' },
        s.keys.otherAccount,
        headers,
      )
      assert.equal(other.statusCode, 409)
      assert.equal(other.json().code, 'IDEMPOTENCY_KEY_REUSED')
      const otherKey = await post('/v2/leads/retail', body, s.keys.all, headers)
      assert.notEqual(otherKey.json().id, first.json().id, 'keys are scoped to the integration')
      t.clock.now += 25 * 60 * 60 * 1000
      const expired = await post(
        '/v2/leads/retail',
        { ...body, firstName: 'Outra' },
        s.keys.otherAccount,
        headers,
      )
      assert.equal(expired.statusCode, 202, 'a key older than 24 h is free again')
      t.clock.now -= 25 * 60 * 60 * 1000
    })

    test('v1 replays the original prospect for a repeated key', async () => {
      const body = { utmSource: 'web', phones: ['+55 31 99111-2233'] }
      const headers = { 'idempotency-key': 'v1-replay' }
      const first = (await post('/v1/lead/retail', body, s.keys.otherAccount, headers)).json()
      const again = (await post('/v1/lead/retail', body, s.keys.otherAccount, headers)).json()
      assert.equal(again.id, first.id)
      assert.equal(again.leads[0].id, first.leads[0].id)
    })

    test('(provider, providerLeadId) already received by this integration is the same lead', async () => {
      const body = {
        provider: 'mercadolibre',
        providerLeadId: 'MLB-1',
        utmSource: 'ml',
        emails: ['ml@loja.com.br'],
      }
      const before = await countLeads()
      const first = (await post('/v2/leads/retail', body)).json()
      const again = (
        await post('/v2/leads/retail', { ...body, leadId: 'ignored', firstName: 'Changed' })
      ).json()
      assert.equal(again.id, first.id)
      assert.equal(again.duplicate, true)
      const otherProvider = (await post('/v2/leads/retail', { ...body, provider: 'olx' })).json()
      assert.notEqual(otherProvider.id, first.id)
      assert.equal(await countLeads(), before + 2)
    })
  })

  test('/metrics counts accepted and processed leads and reads the queue from the database', async () => {
    await post('/v2/leads/retail', { utmSource: 'metrics', emails: ['metrics@loja.com.br'] })
    const body = (await t.app.inject({ method: 'GET', url: '/metrics' })).body
    assert.match(body, /ventas_leads_accepted_total\{industry="retail"\} \d+/)
    assert.match(body, /ventas_leads_processed_total\{status="processed",merged="true"\} \d+/)
    const queued = await t.db
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
    assert.ok(Number(queued.n) >= 1)
    assert.match(body, new RegExp(`ventas_queue_depth ${Number(queued.n)}\\n`))
    assert.match(body, /ventas_queue_oldest_age_seconds \d/)
  })

  test('a lead that merges into a prospect outside the key’s groups answers without that prospect’s data', async () => {
    // The seed's prospect (Juan Pérez, +5491145520371) is in account A's root group; the Norte key cannot see it.
    const res = await post(
      '/v1/lead/retail',
      { utmSource: 'norte', firstName: 'Sofía', phones: ['+54 9 11 4552-0371'] },
      s.keys.norte,
    )
    assert.equal(res.statusCode, 200, res.body)
    const body = res.json()
    assert.equal(body.id, s.a.lead.prospectId, 'merged into the existing prospect (merging is account-wide)')
    assert.equal(body.merged, true)
    assert.equal(body.firstName, 'Sofía')
    assert.equal(body.lastName, undefined)
    assert.deepEqual([body.phones, body.emails, body.contactMediums, body.agent], [[], [], [], undefined])
    assert.deepEqual(body.leads.map((l: { id: string }) => l.id).length, 1)
    assert.ok(!res.body.includes('Pérez'), 'nothing of the other group’s prospect')
    assert.equal((await get(`/v1/prospect/${body.id}`, s.keys.norte)).statusCode, 404)
  })

  test('a batch of 1000 leads with 20 phones each stays within the database’s parameter limits', async () => {
    const leads = Array.from({ length: 1000 }, (_, i) => ({
      utmSource: 'bulk',
      phones: Array.from({ length: 20 }, (_, j) => `+55 31 9${String(10_000_000 + i * 20 + j)}`),
    }))
    const res = await post('/v2/leads/retail/batch', { leads })
    assert.equal(res.statusCode, 202, res.body.slice(0, 300))
    assert.ok(res.json().results.every((r: { status?: string }) => r.status === 'queued'))
    const keys = await t.db
      .selectFrom('leadKeys')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where(
        'leadId',
        'in',
        res
          .json()
          .results.slice(0, 10)
          .map((r: { id: string }) => r.id),
      )
      .executeTakeFirstOrThrow()
    assert.equal(Number(keys.n), 200)
  })

  async function countLeads() {
    const row = await t.db
      .selectFrom('leads')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
    return Number(row.n)
  }
})
