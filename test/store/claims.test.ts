import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { claimDeliveries, insertDeliveries } from '../../src/store/deliveries.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'

/**
 * The sender's claim (webhooks.md §4): oldest due first across subscriptions, read lane by lane;
 * a busy lane, a delivery leased to a sender and one not due yet are all left where they are.
 */
describe(`claiming deliveries lane by lane (${ENGINE})`, () => {
  let t: TestContext
  before(async () => {
    t = await createTestApp()
  })
  after(() => t.close())

  const NOW = 1_800_000_000_000
  const LEASE = 60_000

  /** Queues one delivery of `subscriptionId` due at NOW + `due`, leased if asked (`until` is a time). */
  async function queue(
    subscriptionId: string,
    name: string,
    due: number,
    leased?: { sender: string; until: number },
  ) {
    const delivery = {
      accountId: 'account-1',
      subscriptionId,
      eventId: name,
      topic: 'leads',
      type: 'processed',
      body: null,
    }
    const lease = leased && { sender: leased.sender, leaseMs: leased.until - (NOW + due) }
    await insertDeliveries(t.db, [{ ...delivery, leased: leased !== undefined }], NOW + due, lease)
  }

  const claim = async (limit: number, busy: string[] = [], sender = 'sender-1') =>
    (await claimDeliveries(t.db, sender, { limit, now: NOW, leaseMs: LEASE, busy })).map((d) => d.eventId)

  test('the oldest due across lanes, up to the limit; busy lanes, live leases and later deliveries wait', async () => {
    await queue('sub-a', 'a1', -90)
    await queue('sub-a', 'a2', -60)
    await queue('sub-a', 'a3', -30)
    await queue('sub-a', 'a-later', 5_000)
    await queue('sub-b', 'b-leased', -100, { sender: 'sender-2', until: NOW + 10_000 })
    await queue('sub-b', 'b1', -80)
    await queue('sub-b', 'b2', -50)
    await queue('sub-c', 'c1', -95)
    await queue('sub-c', 'c2', -70)
    await queue('sub-d', 'd-lease-ran-out', -40, { sender: 'sender-2', until: NOW - 1 })

    // c is busy; b's first is leased; four of the rest, merged by due time.
    assert.deepEqual(await claim(4, ['sub-c']), ['a1', 'b1', 'a2', 'b2'])
    // What was just claimed is leased now; a lapsed lease is claimed again.
    assert.deepEqual(await claim(10, ['sub-c']), ['d-lease-ran-out', 'a3'])
    assert.deepEqual(await claim(10, ['sub-c']), [])
    // Not busy any more: its oldest comes first.
    assert.deepEqual(await claim(1), ['c1'])
    assert.deepEqual(await claim(10), ['c2'])

    const claimed = await t.db
      .selectFrom('deliveries')
      .select(['eventId', 'lockedBy', 'lockedUntil'])
      .where('eventId', 'in', ['a1', 'a-later', 'b-leased'])
      .orderBy('eventId')
      .execute()
    assert.deepEqual(
      claimed.map((d) => [d.eventId, d.lockedBy, Number(d.lockedUntil) || null]),
      [
        ['a-later', null, null],
        ['a1', 'sender-1', NOW + LEASE],
        ['b-leased', 'sender-2', NOW + 10_000],
      ],
    )
  })
})
