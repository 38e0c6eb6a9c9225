import assert from 'node:assert/strict'
import { after, before, beforeEach, describe, test } from 'node:test'
import { ColumnNode, ValueNode } from 'kysely'
import { Webhook } from 'standardwebhooks'
import { signWebhook } from '../../src/domain/signature.js'
import { LeadWorker } from '../../src/jobs/worker.js'
import { updateAccount } from '../../src/services/directory.js'
import { blockValue } from '../../src/store/accounts.js'
import { claimDeliveries } from '../../src/store/deliveries.js'
import { dispatchEvents } from '../../src/webhooks/dispatcher.js'
import { AttemptRecorder } from '../../src/webhooks/recorder.js'
import { WebhookSender } from '../../src/webhooks/sender.js'
import { WebhookWorker, type WebhookWorkerOptions } from '../../src/webhooks/worker.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { type Seed, seed } from '../seed.js'
import { type Answer, type Received, type Receiver, startReceiver } from './receiver.js'

/**
 * webhooks.md end to end: subscriptions through the API, events from real leads, a real HTTP
 * receiver on 127.0.0.1, and the delivery worker driven by the test's clock (no sleeps: a retry
 * "5 s later" is the clock moved 6 s and the worker run again).
 */
const HOUR = 3_600_000

type Harness = {
  t: TestContext
  s: Seed
  /** Runs the lead worker then the webhook worker until both are idle. */
  drain: (worker?: WebhookWorker) => Promise<void>
  worker: (options?: Partial<WebhookWorkerOptions>) => WebhookWorker
  call: (
    method: 'GET' | 'POST' | 'DELETE',
    url: string,
    payload?: object,
    key?: string,
  ) => Promise<{ status: number; body: any }>
  lead: (body: object, key?: string) => Promise<string>
  close: () => Promise<void>
}

async function harness(): Promise<Harness> {
  const t = await createTestApp({
    env: { VENTAS_WEBHOOK_ALLOW_PRIVATE: 'true', VENTAS_RATE_LIMIT: '100000' },
  })
  const s = await seed(t.db, t.secretKey)
  const senders: WebhookSender[] = []
  const workers: WebhookWorker[] = []
  const worker = (options: Partial<WebhookWorkerOptions> = {}) => {
    const sender = new WebhookSender({
      allowPrivate: true,
      timeoutMs: 400,
      userAgent: 'Ventas-Webhooks/test',
    })
    senders.push(sender)
    const created = new WebhookWorker(t.db, {
      secretKey: t.secretKey,
      sender,
      leaseMs: 10_000,
      now: () => t.clock.now,
      random: () => 0.5, // no jitter: the schedule's exact delays
      ...options,
    })
    workers.push(created)
    return created
  }
  const main = worker()
  const leads = new LeadWorker(t.db, { now: () => t.clock.now })
  const call: Harness['call'] = async (method, url, payload, key = s.keys.all) => {
    const res = await t.app.inject({
      method,
      url,
      headers: { 'x-api-key': key },
      ...(payload ? { payload } : {}),
    })
    return { status: res.statusCode, body: res.body ? res.json() : undefined }
  }
  return {
    t,
    s,
    worker,
    call,
    drain: async (w = main) => {
      while ((await leads.runOnce()) > 0) {}
      await w.runOnce()
    },
    lead: async (body, key = s.keys.all) => {
      const res = await call('POST', '/v2/leads/retail', body, key)
      assert.equal(res.status, 202, JSON.stringify(res.body))
      return res.body.id as string
    },
    close: async () => {
      await Promise.all(workers.map((w) => w.stop()))
      await Promise.all(senders.map((x) => x.close()))
      await t.close()
    },
  }
}

async function subscribeTo(h: Harness, receiver: Receiver | string, topics: string[], key?: string) {
  const callbackUrl = typeof receiver === 'string' ? receiver : receiver.url
  const res = await h.call('POST', '/v1/notifications/subscriptions', { topics, callbackUrl }, key)
  assert.equal(res.status, 201, JSON.stringify(res.body))
  return res.body as { id: string; secret: string; topics: string[] }
}

const verify = (secret: string, r: Received) =>
  new Webhook(secret).verify(r.body, {
    'webhook-id': String(r.headers['webhook-id']),
    'webhook-timestamp': String(r.headers['webhook-timestamp']),
    'webhook-signature': String(r.headers['webhook-signature']),
  })

async function deliveryOf(h: Harness, subscriptionId: string) {
  const res = await h.call('GET', `/v1/notifications/deliveries?subscription=${subscriptionId}`)
  assert.equal(res.status, 200)
  const [latest] = res.body
  const detail = await h.call('GET', `/v1/notifications/delivery/${latest.id}`)
  return detail.body
}

let phone = 0
const nextPhone = () => `+55 11 9${String(8000_0000 + ++phone)}`

describe(`webhook subscriptions and delivery (${ENGINE})`, () => {
  let h: Harness
  let receivers: Receiver[] = []
  const receiver = async (answer?: (r: Received, i: number) => Answer) => {
    const started = await startReceiver(answer)
    receivers.push(started)
    return started
  }
  before(async () => {
    h = await harness()
  })
  after(async () => {
    await h.close()
  })
  beforeEach(async () => {
    await Promise.all(receivers.map((r) => r.close()))
    receivers = []
  })
  after(async () => {
    await Promise.all(receivers.map((r) => r.close()))
  })

  test('topics, and a subscription that shows its secret once', async () => {
    const topics = await h.call('GET', '/v1/notifications/topics')
    assert.deepEqual(
      topics.body.map((t: { name: string }) => t.name),
      ['prospects', 'interactions', 'quotes', 'agents', 'leads'],
    )
    const r = await receiver()
    const created = await subscribeTo(h, r, ['leads', 'prospects'])
    assert.match(created.secret, /^whsec_/)
    const shown = await h.call('GET', `/v1/notifications/subscription/${created.id}`)
    assert.equal(shown.body.secret, undefined, 'the secret is not shown again')
    assert.equal(shown.body.callbackUrl, r.url, 'the query string is kept')
    const list = await h.call('GET', '/v1/notifications/subscriptions')
    assert.deepEqual(
      list.body.map((x: { id: string }) => x.id),
      [created.id],
      'subscribing again deactivated the seed subscription of the same group',
    )
  })

  test('a v2 lead is delivered on the leads topic with its prospect, signed, and a rejected one as rejected', async () => {
    const r = await receiver()
    const sub = await subscribeTo(h, r, ['leads'])
    const leadId = await h.lead({ utmSource: 'web', firstName: 'Marta', phones: [nextPhone()] })
    const blocked = nextPhone()
    const rejectedId = await h.lead({ utmSource: 'web', firstName: 'Nadie', phones: [blocked] })
    const status = await h.call('GET', `/v2/leads/${rejectedId}`)
    assert.equal(status.body.status, 'queued')
    // Blocked after it was accepted: processing finds no usable contact and rejects it.
    await blockValue(h.t.db, h.s.a.account.id, 'phone', blocked.replace(/ /g, ''))
    await h.drain()
    await r.waitFor(2)
    const byLead = new Map(r.received.map((x) => [(x.json.lead as { id: string }).id, x]))
    const processed = byLead.get(leadId) as Received
    const rejected = byLead.get(rejectedId) as Received
    assert.ok(processed && rejected, 'one delivery per lead')
    for (const x of [processed, rejected]) {
      assert.ok(verify(sub.secret, x), 'standardwebhooks verifies the signature')
      assert.equal(x.json.operationId, x.headers['webhook-id'])
      assert.equal(x.json.subscriptionId, sub.id)
      assert.equal(x.json.topic, 'leads')
      assert.equal(x.json.attempts, 1)
      assert.match(String(x.headers['user-agent']), /^Ventas-Webhooks\//)
      assert.equal(x.headers['content-type'], 'application/json')
      for (const field of ['received', 'sent', 'updatedAt'])
        assert.match(String(x.json[field]), /^\d{4}-\d\d-\d\dT/)
    }
    const prospectId = (await h.call('GET', `/v2/leads/${leadId}`)).body.prospectId
    assert.equal(processed.json.type, 'processed')
    assert.deepEqual((processed.json.lead as { prospectId: string }).prospectId, prospectId)
    assert.equal((processed.json.prospect as { id: string }).id, prospectId)
    assert.equal((processed.json.prospect as { firstName: string }).firstName, 'Marta')
    assert.equal(rejected.json.type, 'rejected')
    assert.equal((rejected.json.lead as { error: { code: string } }).error.code, 'UNPROCESSABLE_LEAD')
    assert.equal(rejected.json.prospect, undefined)
  })

  test('prospect events carry the prospect and a per-prospect sequence', async () => {
    const r = await receiver()
    await subscribeTo(h, r, ['prospects'])
    const number = nextPhone()
    await h.lead({ utmSource: 'web', firstName: 'Lía', phones: [number] })
    await h.lead({
      utmSource: 'web',
      firstName: 'Lía',
      emails: ['lia.souza@correo.com.ar'],
      phones: [number],
    })
    await h.drain()
    const events = r.received.map((x) => x.json).sort((a, b) => Number(a.sequence) - Number(b.sequence))
    assert.deepEqual(
      events.map((e) => e.type),
      ['created', 'updated'],
    )
    const [first, second] = events as [Record<string, any>, Record<string, any>]
    assert.equal(first.prospect.id, second.prospect.id)
    assert.ok(second.sequence > first.sequence)
    assert.deepEqual(second.prospect.emails, ['lia.souza@correo.com.ar'])
  })

  test('500 then 200: delivered on attempt 2 with the same webhook-id', async () => {
    const r = await receiver((_, i) => (i === 0 ? { status: 500, body: 'boom' } : { status: 200 }))
    const sub = await subscribeTo(h, r, ['leads'])
    await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    await h.drain()
    let delivery = await deliveryOf(h, sub.id)
    assert.equal(delivery.status, 'pending')
    assert.equal(delivery.attempts[0].statusCode, 500)
    assert.equal(delivery.attempts[0].responseBody, 'boom')
    assert.equal(Date.parse(delivery.nextAttemptAt) - Date.parse(delivery.attempts[0].sentAt), 5_000)
    await h.drain()
    assert.equal(r.received.length, 1, 'not due yet: nothing sent')
    h.t.clock.now += 6_000
    await h.drain()
    assert.equal(r.received.length, 2)
    const [one, two] = r.received as [Received, Received]
    assert.equal(two.headers['webhook-id'], one.headers['webhook-id'])
    assert.equal(two.json.attempts, 2)
    delivery = await deliveryOf(h, sub.id)
    assert.equal(delivery.status, 'delivered')
    assert.equal(delivery.attemptCount, 2)
  })

  test('a timeout, a refused connection and a redirect are failed attempts; the redirect is not followed', async () => {
    const hanging = await receiver(() => 'hang')
    const target = await receiver()
    const redirecting = await receiver(() => ({ status: 302, headers: { location: target.url } }))
    const closed = await receiver()
    await closed.close()
    const cases = [
      { url: hanging.url, error: /timed out/ },
      { url: closed.url, error: /refused/ },
      { url: redirecting.url, error: /redirects are not followed/, statusCode: 302 },
    ]
    for (const c of cases) {
      const sub = await subscribeTo(h, c.url, ['leads'])
      await h.lead({ utmSource: 'web', phones: [nextPhone()] })
      await h.drain()
      const delivery = await deliveryOf(h, sub.id)
      assert.equal(delivery.status, 'pending', c.url)
      assert.match(delivery.attempts[0].error, c.error)
      assert.equal(delivery.attempts[0].statusCode, c.statusCode)
      assert.ok(delivery.nextAttemptAt)
    }
    assert.equal(target.received.length, 0, 'the redirect target was never called')
  })

  test('429 with Retry-After: 120 waits at least 120 s', async () => {
    const r = await receiver(() => ({ status: 429, headers: { 'retry-after': '120' } }))
    const sub = await subscribeTo(h, r, ['leads'])
    await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    await h.drain()
    const delivery = await deliveryOf(h, sub.id)
    assert.ok(Date.parse(delivery.nextAttemptAt) - Date.parse(delivery.attempts[0].sentAt) >= 120_000)
    h.t.clock.now += 60_000
    await h.drain()
    assert.equal(r.received.length, 1, 'not before 120 s')
    h.t.clock.now += 61_000
    await h.drain()
    assert.equal(r.received.length, 2)
  })

  test('410 Gone deactivates the subscription at once, with the reason', async () => {
    const r = await receiver(() => ({ status: 410 }))
    const sub = await subscribeTo(h, r, ['leads'])
    await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    await h.drain(h.worker({ perSubscription: 1, maxInFlight: 1 }))
    const shown = (await h.call('GET', `/v1/notifications/subscription/${sub.id}`)).body
    assert.equal(shown.active, false)
    assert.match(shown.deactivationReason, /410/)
    const deliveries = (await h.call('GET', `/v1/notifications/deliveries?subscription=${sub.id}`)).body
    assert.deepEqual(
      deliveries.map((d: { status: string }) => d.status),
      ['failed', 'failed'],
    )
    assert.equal(r.received.length, 1, 'nothing more is sent after the 410')
    const again = await h.call('POST', `/v1/notifications/delivery/${deliveries[0].id}/redeliver`)
    assert.equal(again.status, 409)
    assert.match(again.body.message, /inactive/)
  })

  test('after the last attempt a delivery is failed; recover?since sends it again, same operationId', async () => {
    let healthy = false
    const r = await receiver(() => (healthy ? { status: 200 } : { status: 503 }))
    const sub = await subscribeTo(h, r, ['leads'])
    await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    const start = h.t.clock.now
    for (let i = 0; i < 8; i++) {
      await h.drain()
      h.t.clock.now += 11 * HOUR
    }
    const failed = await deliveryOf(h, sub.id)
    assert.equal(failed.status, 'failed')
    assert.equal(failed.attemptCount, 8)
    assert.equal(r.received.length, 8)
    healthy = true
    const recovered = await h.call(
      'POST',
      `/v1/notifications/subscription/${sub.id}/recover?since=${new Date(start - 1000).toISOString()}`,
    )
    assert.equal(recovered.status, 202)
    assert.deepEqual(recovered.body, { queued: 1 })
    await h.drain()
    assert.equal(r.received.length, 9)
    assert.equal(r.received[8]?.headers['webhook-id'], r.received[0]?.headers['webhook-id'])
    assert.equal((await deliveryOf(h, sub.id)).status, 'delivered')
    const redeliver = await h.call('POST', `/v1/notifications/delivery/${failed.id}/redeliver`)
    assert.equal(redeliver.status, 202)
    assert.equal(redeliver.body.status, 'pending')
    await h.drain()
    assert.equal(r.received.length, 10)
    assert.equal(r.received[9]?.json.operationId, r.received[0]?.json.operationId)
  })

  test('a running worker sends a redelivered delivery at once, though its last claim found nothing', async () => {
    const r = await receiver()
    const sub = await subscribeTo(h, r, ['leads'])
    await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    // Its last claim finds nothing: on this clock, which does not move, that finding never expires,
    // and the next poll is a minute away. Only the redelivery itself can make it claim again.
    const running = h.worker({ pollMs: 60_000 })
    await h.drain(running)
    assert.equal(r.received.length, 1)
    const sent = await deliveryOf(h, sub.id)
    running.start()
    h.t.app.webhookWorker = running
    try {
      const again = await h.call('POST', `/v1/notifications/delivery/${sent.id}/redeliver`)
      assert.equal(again.status, 202)
      let timer: NodeJS.Timeout | undefined
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('the redelivery waited for a poll')), 10_000)
      })
      await Promise.race([r.waitFor(2), late]).finally(() => clearTimeout(timer))
      assert.equal(r.received[1]?.headers['webhook-id'], r.received[0]?.headers['webhook-id'])
    } finally {
      h.t.app.webhookWorker = null
      await running.stop()
    }
  })

  test('a subscription whose deliveries all failed for 5 days is deactivated, and says why', async () => {
    const r = await receiver(() => ({ status: 500 }))
    const sub = await subscribeTo(h, r, ['leads'])
    for (let hours = 0; hours <= 5 * 24 + 12; hours += 12) {
      await h.lead({ utmSource: 'web', phones: [nextPhone()] })
      await h.drain()
      h.t.clock.now += 12 * HOUR
    }
    const shown = (await h.call('GET', `/v1/notifications/subscription/${sub.id}`)).body
    assert.equal(shown.active, false)
    assert.match(shown.deactivationReason, /failed for 5 days/)
    const pending = (
      await h.call('GET', `/v1/notifications/deliveries?subscription=${sub.id}&status=pending`)
    ).body
    assert.equal(pending.length, 0, 'its pending deliveries failed with it')
  })

  test('a success within 5 days keeps the subscription', async () => {
    let i = 0
    const r = await receiver(() => (i++ % 6 === 5 ? { status: 200 } : { status: 500 }))
    const sub = await subscribeTo(h, r, ['leads'])
    for (let hours = 0; hours <= 7 * 24; hours += 12) {
      await h.lead({ utmSource: 'web', phones: [nextPhone()] })
      await h.drain()
      h.t.clock.now += 12 * HOUR
    }
    assert.ok(r.received.length > 10)
    assert.equal((await h.call('GET', `/v1/notifications/subscription/${sub.id}`)).body.active, true)
  })

  test('rotate-secret: both secrets verify for 24 h, then only the new one', async () => {
    h.t.clock.now = Date.now() // standardwebhooks checks timestamps against the real clock
    const r = await receiver()
    const sub = await subscribeTo(h, r, ['leads'])
    const rotated = await h.call('POST', `/v1/notifications/subscription/${sub.id}/rotate-secret`)
    assert.equal(rotated.status, 200)
    assert.notEqual(rotated.body.secret, sub.secret)
    await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    await h.drain()
    const during = r.received[0] as Received
    assert.equal(String(during.headers['webhook-signature']).split(' ').length, 2)
    assert.ok(verify(sub.secret, during), 'the old secret still verifies')
    assert.ok(verify(rotated.body.secret, during), 'the new secret verifies')
    h.t.clock.now += 24 * HOUR + 1000
    await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    await h.drain()
    const later = r.received[1] as Received
    // standardwebhooks refuses timestamps far from its own clock; this one is a day ahead.
    const signature = String(later.headers['webhook-signature'])
    assert.equal(signature.split(' ').length, 1)
    const id = String(later.headers['webhook-id'])
    const ts = Number(later.headers['webhook-timestamp'])
    assert.equal(signature, signWebhook(rotated.body.secret, id, ts, later.body))
    assert.notEqual(signature, signWebhook(sub.secret, id, ts, later.body))
  })

  test('an endpoint that hangs does not delay the others', async () => {
    await updateAccount(h.t.db, h.s.a.account.id, { webhookFanOut: true })
    const slow = await receiver(() => 'hang')
    const fast = await receiver()
    const slowSub = await subscribeTo(h, slow, ['leads'])
    const fastSub = await subscribeTo(h, fast, ['leads'])
    const active = (await h.call('GET', '/v1/notifications/subscriptions')).body.map(
      (x: { id: string }) => x.id,
    )
    assert.ok(active.includes(slowSub.id) && active.includes(fastSub.id), 'fan-out keeps both')
    for (let i = 0; i < 20; i++) await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    while ((await new LeadWorker(h.t.db, { now: () => h.t.clock.now }).runOnce()) > 0) {}
    const sender = new WebhookSender({ allowPrivate: true, timeoutMs: 5_000, userAgent: 'test' })
    const running = new WebhookWorker(h.t.db, {
      secretKey: h.t.secretKey,
      sender,
      leaseMs: 60_000,
      now: () => h.t.clock.now,
      perSubscription: 2,
      pollMs: 20,
    })
    running.start()
    try {
      await fast.waitFor(20)
      // Every fast delivery went out while the slow endpoint held its two requests open.
      assert.equal(slow.hanging(), 2)
      assert.equal(slow.received.length, 2)
    } finally {
      await slow.close()
      await running.stop()
      await sender.close()
      await updateAccount(h.t.db, h.s.a.account.id, { webhookFanOut: false })
    }
  })

  test('two workers on one database deliver each event once', async () => {
    const r = await receiver()
    await subscribeTo(h, r, ['leads'])
    for (let i = 0; i < 30; i++) await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    while ((await new LeadWorker(h.t.db, { now: () => h.t.clock.now }).runOnce()) > 0) {}
    const [one, two] = [h.worker(), h.worker()]
    await Promise.all([one.runOnce(), two.runOnce(), one.runOnce(), two.runOnce()])
    await r.waitFor(30)
    const ids = r.received.map((x) => x.headers['webhook-id'])
    assert.equal(ids.length, 30)
    assert.equal(new Set(ids).size, 30)
  })

  test('retention purges old delivered and failed deliveries', async () => {
    const r = await receiver()
    const sub = await subscribeTo(h, r, ['leads'])
    await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    await h.drain()
    const worker = h.worker({ retention: { deliveredMs: 30 * 24 * HOUR, failedMs: 90 * 24 * HOUR } })
    h.t.clock.now += 29 * 24 * HOUR
    await worker.purge()
    assert.equal((await h.call('GET', `/v1/notifications/deliveries?subscription=${sub.id}`)).body.length, 1)
    h.t.clock.now += 2 * 24 * HOUR
    await worker.purge()
    assert.equal((await h.call('GET', `/v1/notifications/deliveries?subscription=${sub.id}`)).body.length, 0)
  })

  test('a lead merged into a prospect of a group the subscription cannot see carries it narrowed', async () => {
    const [norteReceiver, rootReceiver] = [await receiver(), await receiver()]
    await subscribeTo(h, norteReceiver, ['leads'], h.s.keys.norte)
    await subscribeTo(h, rootReceiver, ['leads'])
    // Juan's prospect (the seed's) is in the root group, outside Norte's subtree.
    await h.lead({ utmSource: 'web', firstName: 'Juancho', phones: ['011 15-4552-0371'] }, h.s.keys.norte)
    await h.drain()
    const narrowed = norteReceiver.received[0]?.json.prospect as Record<string, unknown>
    const full = rootReceiver.received[0]?.json.prospect as Record<string, unknown>
    assert.equal(narrowed.id, h.s.a.lead.prospectId)
    assert.equal(full.id, h.s.a.lead.prospectId)
    assert.deepEqual([narrowed.firstName, narrowed.lastName, narrowed.phones], ['Juancho', undefined, []])
    assert.equal(full.lastName, 'Pérez')
    assert.equal((full.phones as string[]).length, 1)
  })

  test('concurrent subscribes leave one active subscription; concurrent rotations both sign', async () => {
    h.t.clock.now = Date.now() // standardwebhooks checks timestamps against the real clock
    const r = await receiver()
    const created = await Promise.all(
      [1, 2, 3, 4].map(() =>
        h.call('POST', '/v1/notifications/subscriptions', { topics: ['leads'], callbackUrl: r.url }),
      ),
    )
    assert.deepEqual(
      created.map((c) => c.status),
      [201, 201, 201, 201],
    )
    const active = (await h.call('GET', '/v1/notifications/subscriptions')).body.filter(
      (x: { groupId: string }) => x.groupId === h.s.a.root.id,
    )
    assert.equal(active.length, 1)
    const id = active[0].id
    const rotations = await Promise.all(
      [1, 2].map(() => h.call('POST', `/v1/notifications/subscription/${id}/rotate-secret`)),
    )
    await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    await h.drain()
    const sent = r.received.at(-1) as Received
    for (const rotation of rotations)
      assert.ok(verify(rotation.body.secret, sent), 'each rotation’s secret signs')
  })

  test('many 410s at once for one subscription: every attempt recorded, deactivated once', async () => {
    const r = await receiver(() => ({ status: 410 }))
    const sub = await subscribeTo(h, r, ['leads'])
    for (let i = 0; i < 8; i++) await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    await h.drain(h.worker({ perSubscription: 8 }))
    const attempts = await h.t.db
      .selectFrom('deliveryAttempts')
      .innerJoin('deliveries', 'deliveries.id', 'deliveryAttempts.deliveryId')
      .select('deliveryAttempts.id')
      .where('deliveries.subscriptionId', '=', sub.id)
      .execute()
    assert.equal(attempts.length, r.received.length, 'no attempt lost to a deadlock')
    assert.ok(r.received.length >= 1)
    const shown = (await h.call('GET', `/v1/notifications/subscription/${sub.id}`)).body
    assert.equal(shown.active, false)
  })

  test('stopping with a request open leaves it unrecorded, for the lease to send again', async () => {
    const r = await receiver(() => 'hang')
    const sub = await subscribeTo(h, r, ['leads'])
    await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    while ((await new LeadWorker(h.t.db, { now: () => h.t.clock.now }).runOnce()) > 0) {}
    const sender = new WebhookSender({ allowPrivate: true, timeoutMs: 10_000, userAgent: 'test' })
    const running = new WebhookWorker(h.t.db, {
      secretKey: h.t.secretKey,
      sender,
      leaseMs: 60_000,
      now: () => h.t.clock.now,
      pollMs: 20,
    })
    running.start()
    await r.waitFor(1)
    await running.stop(50)
    await sender.close()
    const delivery = await h.t.db
      .selectFrom('deliveries')
      .selectAll()
      .where('subscriptionId', '=', sub.id)
      .executeTakeFirstOrThrow()
    assert.equal(delivery.status, 'pending')
    assert.equal(delivery.attempts, 0, 'the aborted attempt spent nothing')
    assert.ok(
      delivery.lockedUntil && delivery.lockedUntil > h.t.clock.now,
      'still claimed until the lease runs out',
    )
    const logged = await h.t.db
      .selectFrom('deliveryAttempts')
      .select('id')
      .where('deliveryId', '=', delivery.id)
      .execute()
    assert.equal(logged.length, 0)
  })

  test('an event that cannot be rendered is set aside; the others are delivered', async () => {
    const r = await receiver()
    await subscribeTo(h, r, ['leads'])
    const broken = await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    const fine = await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    while ((await new LeadWorker(h.t.db, { now: () => h.t.clock.now }).runOnce()) > 0) {}
    // A row damaged on disk: its lead's JSON no longer parses.
    await h.t.db.updateTable('leads').set({ body: '{"phones": [' }).where('id', '=', broken).execute()
    const setAside: string[] = []
    const logging = h.worker({
      log: {
        error: (o: object) => setAside.push(String((o as { eventId: string }).eventId)),
        warn: () => {},
        info: () => {},
      },
    })
    await logging.runOnce()
    assert.deepEqual(
      r.received.map((x) => (x.json.lead as { id: string }).id),
      [fine],
    )
    const event = await h.t.db
      .selectFrom('events')
      .select(['id', 'dispatchedAt'])
      .where('subjectId', '=', broken)
      .executeTakeFirstOrThrow()
    assert.deepEqual(setAside, [event.id], 'reported with its id')
    assert.ok(event.dispatchedAt, 'set aside, so it no longer holds up the outbox')
  })

  test("a dispatch leases up to each subscription's room; an event dispatched again leases nothing", async () => {
    const r = await receiver()
    const sub = await subscribeTo(h, r, ['leads'])
    for (let i = 0; i < 3; i++) await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    while ((await new LeadWorker(h.t.db, { now: () => h.t.clock.now }).runOnce()) > 0) {}
    const lease = (sender: string) => ({
      sender,
      leaseMs: 60_000,
      total: 512,
      room: (id: string) => (id === sub.id ? 2 : 0),
    })
    const { leased, queuedFor } = await dispatchEvents(h.t.db, h.t.clock.now, {
      lease: lease('dispatch-test'),
    })
    assert.deepEqual(queuedFor, [sub.id], 'its third delivery is left in the queue')
    const rows = await h.t.db
      .selectFrom('deliveries')
      .innerJoin('events', 'events.id', 'deliveries.eventId')
      .select(['deliveries.id', 'lockedBy', 'lockedUntil', 'events.body'])
      .where('subscriptionId', '=', sub.id)
      .orderBy('deliveries.eventId')
      .execute()
    assert.deepEqual(
      rows.map((row) => [row.lockedBy, row.lockedUntil]),
      [
        ['dispatch-test', h.t.clock.now + 60_000],
        ['dispatch-test', h.t.clock.now + 60_000],
        [null, null],
      ],
      'the two oldest events leased, the third left for a claim',
    )
    assert.deepEqual(
      leased.map((l) => [l.delivery.id, l.objects]),
      rows.slice(0, 2).map((row) => [row.id, row.body]),
      'returned with the objects the attempt sends',
    )

    // The third event dispatched again (an operator cleared its dispatched_at) beside a new one:
    // its delivery is already there, so its new row is skipped, and the dispatch's other lease
    // (the new event's) is given back, so no caller holds a row that was not written.
    const third = await h.t.db
      .selectFrom('deliveries')
      .select('eventId')
      .where('id', '=', (rows[2] as (typeof rows)[number]).id)
      .executeTakeFirstOrThrow()
    await h.t.db.updateTable('events').set({ dispatchedAt: null }).where('id', '=', third.eventId).execute()
    await h.lead({ utmSource: 'web', phones: [nextPhone()] })
    while ((await new LeadWorker(h.t.db, { now: () => h.t.clock.now }).runOnce()) > 0) {}
    const again = await dispatchEvents(h.t.db, h.t.clock.now, { lease: lease('dispatch-again') })
    assert.deepEqual(again.leased, [])
    const after = await h.t.db
      .selectFrom('deliveries')
      .select('lockedBy')
      .where('subscriptionId', '=', sub.id)
      .orderBy('eventId')
      .execute()
    assert.deepEqual(
      after.map((row) => row.lockedBy),
      ['dispatch-test', 'dispatch-test', null, null],
    )
  })

  test("a running worker sends each new delivery once, leased at dispatch up to its lane's room, the rest claimed", async () => {
    const r = await receiver()
    const sub = await subscribeTo(h, r, ['leads'])
    // One request open at a time: a lane holds four, so a dispatch of ten leases four and leaves
    // six for claims. The poll is a minute away: every step has to be woken by the one before.
    const running = h.worker({ perSubscription: 1, pollMs: 60_000 })
    running.start()
    try {
      for (let i = 0; i < 10; i++) await h.lead({ utmSource: 'web', phones: [nextPhone()] })
      while ((await new LeadWorker(h.t.db, { now: () => h.t.clock.now }).runOnce()) > 0) {}
      running.nudge()
      let timer: NodeJS.Timeout | undefined
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('a delivery waited for the poll')), 10_000)
      })
      await Promise.race([r.waitFor(10), late]).finally(() => clearTimeout(timer))
    } finally {
      await running.stop()
    }
    const ids = r.received.map((x) => String(x.headers['webhook-id']))
    assert.equal(new Set(ids).size, 10, 'ten events, each sent once')
    assert.equal(ids.length, 10)
    const rows = await h.t.db
      .selectFrom('deliveries')
      .select(['status', 'attempts', 'lockedBy'])
      .where('subscriptionId', '=', sub.id)
      .execute()
    assert.deepEqual(
      rows.map((row) => [row.status, row.attempts, row.lockedBy]),
      Array.from({ length: 10 }, () => ['delivered', 1, null]),
    )
  })

  test('beside an endpoint that hangs, new deliveries go out leased at dispatch, with no claim reading past its backlog', async () => {
    const slow = await receiver(() => 'hang')
    const fast = await receiver()
    // Without fan-out the first replaces every earlier subscription; with it, the second joins it.
    await subscribeTo(h, slow, ['leads'])
    await updateAccount(h.t.db, h.s.a.account.id, { webhookFanOut: true })
    await subscribeTo(h, fast, ['leads'])
    // Claims counted as the database sees them: the only update that writes a sender into lockedBy.
    let claims = 0
    const counted = h.t.db.withPlugin({
      transformQuery: ({ node }) => {
        if (
          node.kind === 'UpdateQueryNode' &&
          node.updates?.some(
            (u) =>
              ColumnNode.is(u.column) &&
              /^locked_?by$/i.test(u.column.column.name) &&
              ValueNode.is(u.value) &&
              u.value.value !== null,
          )
        )
          claims += 1
        return node
      },
      transformResult: async ({ result }) => result,
    })
    const sender = new WebhookSender({ allowPrivate: true, timeoutMs: 10_000, userAgent: 'test' })
    const running = new WebhookWorker(counted, {
      secretKey: h.t.secretKey,
      sender,
      leaseMs: 60_000,
      now: () => h.t.clock.now,
      perSubscription: 1,
      pollMs: 60_000,
    })
    const processed = async () => {
      while ((await new LeadWorker(h.t.db, { now: () => h.t.clock.now }).runOnce()) > 0) {}
      running.nudge()
    }
    running.start()
    try {
      // The slow lane fills (one open, three waiting) and a claim finds the rest of its backlog
      // skipped: from then on only its lane is busy. Counting starts one lead later, so a claim
      // woken by the first six's last answers cannot land in the count.
      for (let i = 0; i < 6; i++) await h.lead({ utmSource: 'web', phones: [nextPhone()] })
      await processed()
      await fast.waitFor(6)
      let before = claims
      for (let i = 7; i <= 12; i++) {
        await h.lead({ utmSource: 'web', phones: [nextPhone()] })
        await processed()
        await fast.waitFor(i)
        if (i === 7) before = claims
      }
      assert.equal(claims - before, 0, 'each of the last five went out leased at its dispatch')
      assert.equal(slow.received.length, 1, 'the slow endpoint still holds its one request')
    } finally {
      await slow.close()
      await running.stop()
      await sender.close()
      await updateAccount(h.t.db, h.s.a.account.id, { webhookFanOut: false })
    }
  })

  test('in one recorded batch, a success after five days of failure keeps the subscription; a 410 does not', async () => {
    for (const [codes, active] of [
      [[500, 200], true],
      [[410, 200], false],
    ] as const) {
      const r = await receiver()
      const sub = await subscribeTo(h, r, ['leads'])
      await h.t.db
        .updateTable('subscriptions')
        .set({ failingSince: h.t.clock.now - 6 * 24 * HOUR })
        .where('id', '=', sub.id)
        .execute()
      for (let i = 0; i < 2; i++) await h.lead({ utmSource: 'web', phones: [nextPhone()] })
      while ((await new LeadWorker(h.t.db, { now: () => h.t.clock.now }).runOnce()) > 0) {}
      await dispatchEvents(h.t.db, h.t.clock.now)
      const claimed = (
        await claimDeliveries(h.t.db, 'recorder-test', {
          limit: 10,
          now: h.t.clock.now,
          leaseMs: 60_000,
          busy: [],
        })
      ).filter((d) => d.subscriptionId === sub.id)
      assert.equal(claimed.length, 2)
      const recorder = new AttemptRecorder(h.t.db, 'recorder-test', { random: () => 0.5 })
      for (const [i, delivery] of claimed.entries())
        recorder.add({
          delivery,
          subscriptionId: sub.id,
          number: 1,
          sentAt: h.t.clock.now,
          endedAt: h.t.clock.now,
          result: { statusCode: codes[i] as number, body: '', durationMs: 1, error: null, retryAfter: null },
        })
      await recorder.settled()
      const shown = (await h.call('GET', `/v1/notifications/subscription/${sub.id}`)).body
      assert.equal(shown.active, active, `${codes.join(' then ')}: ${shown.deactivationReason}`)
    }
  })

  test('keys see only their subtree and their account', async () => {
    const r = await receiver()
    const rootSub = await subscribeTo(h, r, ['leads'])
    const norteSub = await subscribeTo(h, r, ['leads'], h.s.keys.norte)
    const norteList = (await h.call('GET', '/v1/notifications/subscriptions', undefined, h.s.keys.norte)).body
    assert.deepEqual(
      norteList.map((x: { id: string }) => x.id),
      [norteSub.id],
    )
    for (const key of [h.s.keys.norte, h.s.keys.otherAccount]) {
      const res = await h.call('GET', `/v1/notifications/subscription/${rootSub.id}`, undefined, key)
      assert.equal(res.status, 404)
    }
    const other = await h.call('GET', '/v1/notifications/deliveries', undefined, h.s.keys.otherAccount)
    assert.deepEqual(other.body, [])
    const gone = await h.call('DELETE', '/v1/notifications/subscriptions', undefined, h.s.keys.norte)
    assert.deepEqual(gone.body, { modified: 1 })
    assert.equal((await h.call('GET', `/v1/notifications/subscription/${rootSub.id}`)).body.active, true)
  })
})

describe(`the SSRF guard at subscribe time (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
  })
  after(() => t.close())

  test('private, loopback, link-local, unique-local, mapped and metadata addresses are refused, naming the setting', async () => {
    for (const callbackUrl of [
      'http://127.0.0.1/hooks',
      'http://[::1]/hooks',
      'http://10.0.0.1/hooks',
      'http://172.16.0.1/hooks',
      'http://192.168.1.1/hooks',
      'http://169.254.169.254/latest/meta-data',
      'http://[fd00::1]/hooks',
      'http://[::ffff:127.0.0.1]/hooks',
      'http://2130706433/',
      'http://localhost:8080/hooks',
    ]) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/notifications/subscriptions',
        headers: { 'x-api-key': s.keys.all },
        payload: { topics: ['leads'], callbackUrl },
      })
      assert.equal(res.statusCode, 400, callbackUrl)
      const body = res.json()
      assert.equal(body.code, 'SCHEMA_VALIDATION_FAILED')
      assert.equal(body.details[0].path, '/callbackUrl')
      assert.match(body.details[0].message, /VENTAS_WEBHOOK_ALLOW_PRIVATE=true/, callbackUrl)
    }
  })

  test('only http(s) URLs, and only known topics', async () => {
    for (const payload of [
      { topics: ['leads'], callbackUrl: 'ftp://93.184.216.34/x' },
      { topics: ['leads'], callbackUrl: 'not a url' },
      { topics: ['nope'], callbackUrl: 'https://93.184.216.34/x' },
      { topics: [], callbackUrl: 'https://93.184.216.34/x' },
    ]) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/notifications/subscriptions',
        headers: { 'x-api-key': s.keys.all },
        payload,
      })
      assert.equal(res.statusCode, 400, JSON.stringify(payload))
      assert.ok(res.json().details[0].path.startsWith('/'), res.body)
    }
  })
})
