import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Webhook } from 'standardwebhooks'
import type { Running } from '../../src/server.js'
import { createTestDatabase, ENGINE, startTestServer, type TestDatabase } from '../helper.js'
import { type Receiver, startReceiver } from './receiver.js'

/**
 * `ventas serve` as operators run it (operations.md §3): the API, the lead worker and the webhook
 * sender in one process. A subscription made through the API receives the result of a v2 lead,
 * signed, without anything but the server running.
 */
describe(`webhooks from ventas serve (${ENGINE})`, () => {
  let database: TestDatabase
  let running: Running
  let receiver: Receiver
  let key: string
  before(async () => {
    database = await createTestDatabase()
    receiver = await startReceiver()
    const env = { ...database.env, VENTAS_WEBHOOK_ALLOW_PRIVATE: 'true', VENTAS_WEBHOOK_CONCURRENCY: '2' }
    const started = await startTestServer(env, true)
    running = started.running
    key = started.key
  })
  after(async () => {
    await running?.stop()
    await receiver?.close()
    await database?.drop()
  })

  test('a v2 lead reaches a subscriber as a signed leads webhook', async () => {
    const headers = { 'x-api-key': key, 'content-type': 'application/json' }
    const subscribed = await fetch(`${running.url}/v1/notifications/subscriptions`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ topics: ['leads'], callbackUrl: receiver.url }),
    })
    assert.equal(subscribed.status, 201)
    const { secret } = (await subscribed.json()) as { secret: string }
    const accepted = await fetch(`${running.url}/v2/leads/retail`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ utmSource: 'web', firstName: 'Ana', phones: ['+55 51 98765-4321'] }),
    })
    assert.equal(accepted.status, 202)
    const { id } = (await accepted.json()) as { id: string }
    await receiver.waitFor(1)
    const [hook] = receiver.received
    assert.ok(hook)
    const verified = new Webhook(secret).verify(hook.body, {
      'webhook-id': String(hook.headers['webhook-id']),
      'webhook-timestamp': String(hook.headers['webhook-timestamp']),
      'webhook-signature': String(hook.headers['webhook-signature']),
    }) as { type: string; lead: { id: string; prospectId: string }; prospect: { id: string } }
    assert.equal(verified.type, 'processed')
    assert.equal(verified.lead.id, id)
    assert.equal(verified.prospect.id, verified.lead.prospectId)
    assert.match(String(hook.headers['user-agent']), /^Ventas-Webhooks\/\d+\.\d+\.\d+$/)
  })

  test('/metrics counts the attempt once it is recorded', async () => {
    const counted = /^ventas_webhook_attempts_total\{topic="leads",outcome="delivered"\} 1$/m
    for (let tries = 0; ; tries++) {
      const metrics = await (await fetch(`${running.url}/metrics`)).text()
      if (counted.test(metrics)) break
      assert.ok(tries < 100, `no delivered attempt in /metrics after 5 s:\n${metrics.slice(0, 2000)}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })

  test('VENTAS_WEBHOOK_CONCURRENCY bounds the requests open to one subscription', async () => {
    const headers = { 'x-api-key': key, 'content-type': 'application/json' }
    const slow = await startReceiver(() => 'hang')
    try {
      const subscribed = await fetch(`${running.url}/v1/notifications/subscriptions`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ topics: ['leads'], callbackUrl: slow.url }),
      })
      assert.equal(subscribed.status, 201)
      const { id: subscription } = (await subscribed.json()) as { id: string }
      for (let i = 0; i < 5; i++) {
        const accepted = await fetch(`${running.url}/v2/leads/retail`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ utmSource: 'web', phones: [`+55 51 98765-432${i}`] }),
        })
        assert.equal(accepted.status, 202)
      }
      // All five are queued for it, and the worker leaves three waiting while two hang.
      for (let tries = 0; ; tries++) {
        const log = await fetch(`${running.url}/v1/notifications/deliveries?subscription=${subscription}`, {
          headers,
        })
        if (((await log.json()) as unknown[]).length === 5) break
        assert.ok(tries < 100, 'five deliveries were not queued within 5 s')
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      await slow.waitFor(2)
      await new Promise((resolve) => setTimeout(resolve, 500))
      assert.equal(slow.hanging(), 2)
      assert.equal(slow.received.length, 2)
    } finally {
      await slow.close()
    }
  })
})
