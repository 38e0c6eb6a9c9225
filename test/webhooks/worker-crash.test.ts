import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { subscribe } from '../../src/services/subscriptions.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { spawnWorker, stopWorkers, type WorkerProcess, waitUntil } from '../jobs/workers.js'
import { ingest, type Seed, seed } from '../seed.js'
import { type Receiver, startReceiver } from './receiver.js'

/**
 * webhooks.md §6, at-least-once: a `ventas worker` killed while a delivery is in flight leaves it
 * claimed; when the claim runs out, the next worker sends it again with the same webhook-id.
 */
describe(`a webhook worker killed mid-delivery (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  let receiver: Receiver
  const workers: WorkerProcess[] = []
  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
    // The first request is held open (the worker dies holding it); every later one is answered.
    receiver = await startReceiver((_, i) => (i === 0 ? 'hang' : { status: 204 }))
  })
  after(async () => {
    await stopWorkers(workers)
    await receiver.close()
    await t.close()
  })

  test('the delivery is made after a restart, with the same webhook-id', async () => {
    const subscription = await subscribe(
      t.db,
      s.integrations.all,
      { topics: ['leads'], callbackUrl: receiver.url },
      t.secretKey,
      Date.now(),
    )
    await ingest(t.db, s.integrations.all, s.a.root, { utmSource: 'crash', phones: ['+54 9 11 4321-0000'] })
    const env = {
      VENTAS_SECRET_KEY: t.secretKey.toString('hex'),
      VENTAS_WEBHOOK_ALLOW_PRIVATE: 'true',
      VENTAS_WEBHOOK_TIMEOUT_MS: '1000',
      VENTAS_WORKER_LEASE_MS: '500',
    }
    const first = spawnWorker(t.database, env)
    workers.push(first)
    await waitUntil('the first worker sends the delivery', async () => receiver.received.length >= 1, {
      timeoutMs: 20_000,
      workers: [first],
    })
    first.child.kill('SIGKILL')
    assert.equal(await first.exited, 'SIGKILL')
    const held = await t.db
      .selectFrom('deliveries')
      .selectAll()
      .where('subscriptionId', '=', subscription.id)
      .executeTakeFirstOrThrow()
    assert.equal(held.status, 'pending', 'the killed worker recorded nothing')
    assert.ok(held.lockedBy, 'it is still claimed by the dead worker')

    const second = spawnWorker(t.database, env)
    workers.push(second)
    await waitUntil('the second worker sends it again', async () => receiver.received.length >= 2, {
      timeoutMs: 20_000,
      workers: [second],
    })
    const [lost, made] = receiver.received
    assert.equal(made?.headers['webhook-id'], lost?.headers['webhook-id'])
    assert.equal(made?.body.length, lost?.body.length)
    await waitUntil(
      'the delivery is recorded as delivered',
      async () => {
        const row = await t.db
          .selectFrom('deliveries')
          .select('status')
          .where('id', '=', held.id)
          .executeTakeFirstOrThrow()
        return row.status === 'delivered'
      },
      { timeoutMs: 10_000, workers: [second] },
    )
  })
})
