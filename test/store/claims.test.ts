import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { claimDeliveries, type Delivery, insertDeliveries } from '../../src/store/deliveries.js'
import { createTestApp, createTwoConnections, ENGINE, type TestContext } from '../helper.js'

/**
 * The sender's claim (webhooks.md §4): oldest due first across subscriptions, read lane by lane;
 * a busy lane, a delivery leased to a sender and one not due yet are all left where they are. The
 * lane-by-lane reading must take exactly what one statement in due order across lanes would take.
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

  test('lanes are read in the order of their first due, each up to the latest of a claim in hand', async () => {
    await t.db.deleteFrom('deliveries').execute()
    await queue('sub-a', 'a1', -10)
    await queue('sub-a', 'a2', -9)
    await queue('sub-b', 'b1', -50)
    await queue('sub-b', 'b2', -40)
    await queue('sub-c', 'c1', -30)
    await queue('sub-d', 'd1', -60)
    await queue('sub-e', 'e-leased', -100, { sender: 'sender-2', until: NOW + 10_000 })
    await queue('sub-e', 'e1', -45)
    // e's leased first puts it first (it gives e1); d fills the claim; b is read up to e1's -45
    // and its b1 pushes e1 out; c's first (-30) is later than the claim's latest (b1, -50): the end.
    // Read by subscription instead, a and b would fill the claim and c would end it: b1, b2.
    assert.deepEqual(await claim(2), ['d1', 'b1'])
    assert.deepEqual(await claim(0), [])
  })

  test('on random queues, the same deliveries in the same order as one statement in due order across lanes', async () => {
    // A small seeded generator (mulberry32), so a failure names a round that replays.
    let seed = 20261130
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0
      let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
      return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296
    }
    const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)] as T
    const lanes = ['lane-1', 'lane-2', 'lane-3', 'lane-4', 'lane-5', 'lane-6', 'lane-7', 'lane-8']
    for (let round = 0; round < 40; round++) {
      await t.db.deleteFrom('deliveries').execute()
      // Even rounds: distinct due times, so the order is one order. Odd rounds: four deliveries to
      // each due time, so which of a tie comes in may differ and only the due times are compared.
      // Some later than now.
      const tied = round % 2 === 1
      const dues = Array.from({ length: 80 }, (_, i) => (tied ? Math.floor(i / 4) * 40 : i * 10) - 600).sort(
        () => random() - 0.5,
      )
      const rows: Delivery[] = dues.map((due, i) => {
        const status = pick(['pending', 'pending', 'pending', 'delivered', 'failed'] as const)
        const lease = status === 'pending' ? pick([null, null, 'live', 'lapsed'] as const) : null
        return {
          id: `r${round}-${String(i).padStart(3, '0')}`,
          accountId: 'account-1',
          subscriptionId: pick(lanes),
          eventId: `r${round}-event-${i}`,
          topic: 'leads',
          type: 'processed',
          status,
          attempts: 0,
          nextAttemptAt: status === 'pending' ? NOW + due : null,
          lockedBy: lease ? 'sender-2' : null,
          lockedUntil: lease === 'live' ? NOW + 5_000 : lease === 'lapsed' ? NOW - 5_000 : null,
          lastStatusCode: null,
          lastError: null,
          deliveredAt: null,
          body: null,
          createdAt: NOW,
          updatedAt: NOW,
        }
      })
      await t.db.insertInto('deliveries').values(rows).execute()
      const busy = lanes.filter(() => random() < 0.3)
      const limit = 1 + Math.floor(random() * 30)

      let expected = t.db
        .selectFrom('deliveries')
        .select(['eventId', 'nextAttemptAt'])
        .where('status', '=', 'pending')
        .where('nextAttemptAt', '<=', NOW)
        .where((eb) => eb.or([eb('lockedUntil', 'is', null), eb('lockedUntil', '<', NOW)]))
        .orderBy('nextAttemptAt')
        .limit(limit)
      if (busy.length > 0) expected = expected.where('subscriptionId', 'not in', busy)
      const oneStatement = await expected.execute()
      const claimed = await claimDeliveries(t.db, 'sender-1', { limit, now: NOW, leaseMs: LEASE, busy })
      const label = `round ${round}: limit ${limit}, busy ${busy.join(' ') || 'none'}`
      const dueTimes = (rows: { nextAttemptAt: number | null }[]) => rows.map((d) => Number(d.nextAttemptAt))
      assert.deepEqual(dueTimes(claimed), dueTimes(oneStatement), label)
      if (!tied)
        assert.deepEqual(
          claimed.map((d) => d.eventId),
          oneStatement.map((d) => d.eventId),
          label,
        )
    }
  })
})

describe(`two senders claiming at once (${ENGINE})`, {
  skip: ENGINE !== 'postgres' && 'PostgreSQL only: SQLite claims one transaction at a time',
}, () => {
  test('the second skips, without waiting, the rows the first is taking, and takes the next', async () => {
    const { first, second, close } = await createTwoConnections()
    try {
      const now = Date.now()
      const queued = Array.from({ length: 10 }, (_, i) => ({
        accountId: 'account-1',
        subscriptionId: 'sub-a',
        eventId: `event-${i}`,
        topic: 'leads',
        type: 'processed',
        body: null,
      }))
      for (const [i, delivery] of queued.entries()) await insertDeliveries(first, [delivery], now - 1_000 + i)
      const options = { now, leaseMs: 60_000, busy: [] }
      let release: () => void = () => {}
      const held = new Promise<void>((resolve) => {
        release = resolve
      })
      let firstTook: string[] = []
      const taking = first.transaction().execute(async (tx) => {
        firstTook = (await claimDeliveries(tx, 'sender-1', { ...options, limit: 4 })).map((d) => d.eventId)
        await held
      })
      while (firstTook.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
      // The first has not committed: its four rows still read as pending and free.
      const secondTook = (await claimDeliveries(second, 'sender-2', { ...options, limit: 6 })).map(
        (d) => d.eventId,
      )
      release()
      await taking
      assert.deepEqual(firstTook, ['event-0', 'event-1', 'event-2', 'event-3'])
      assert.deepEqual(secondTook, ['event-4', 'event-5'])
      const leased = await first
        .selectFrom('deliveries')
        .select(['eventId', 'lockedBy'])
        .orderBy('nextAttemptAt')
        .execute()
      assert.deepEqual(
        leased.map((d) => d.lockedBy),
        [...Array(4).fill('sender-1'), ...Array(2).fill('sender-2'), ...Array(4).fill(null)],
      )
    } finally {
      await close()
    }
  })
})
