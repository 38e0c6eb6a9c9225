import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { newId } from '../../src/domain/ids.js'
import { Checkers } from '../../src/services/checkers.js'
import { type CheckContext, checkItems, type ItemCheck } from '../../src/services/checking.js'
import { createTestApp, ENGINE, type TestContext } from '../helper.js'
import { type Seed, seed } from '../seed.js'

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../../shared/fixtures/leads/${name}`, import.meta.url), 'utf8'))

/** The 5 bytes of an ObjectId that its process, or thread, chose once (ids.ts). */
const maker = (id: string) => id.slice(8, 18)
const here = maker(newId())

describe(`checking a batch on a thread (${ENGINE})`, () => {
  let t: TestContext
  let s: Seed
  let ctx: CheckContext
  before(async () => {
    t = await createTestApp()
    s = await seed(t.db, t.secretKey)
    ctx = {
      integration: s.integrations.all,
      group: s.a.root,
      industry: 'retail',
      blocked: new Set(['e:blocked@example.com']),
      at: t.clock.now,
    }
  })
  after(() => t.close())

  // A valid lead from the fixtures, one the schema refuses, one with no usable contact (a blocked
  // email is its only contact), and one the alias folding refuses (a category the group lacks).
  const items = () => [
    fixture('retail-webform.json'),
    { utmSource: 'web', phones: ['+5511987654321'], priority: 'high' },
    { utmSource: 'web', emails: ['blocked@example.com'] },
    { utmSource: 'web', phones: ['+5511987654321'], category: 'no-such-category' },
  ]
  /** A check as it reads wherever it ran: lead ids differ by maker, and are compared apart. */
  const outcome = (checks: ItemCheck[]) =>
    checks.map((c) => (c.ok ? { ...c, lead: { ...c.lead, id: 'made' } } : c))

  test('the thread answers what checking here answers, and made the leads itself', async () => {
    const checkers = new Checkers(true)
    try {
      const [threaded, again] = await Promise.all([
        checkers.check(items(), ctx),
        checkers.check(items(), ctx),
      ])
      const local = checkItems(items(), ctx)
      assert.deepEqual(outcome(threaded), outcome(local))
      assert.deepEqual(outcome(again), outcome(local))
      assert.deepEqual(
        local.map((c) => c.ok),
        [true, false, false, false],
      )
      assert.ok('schema' in (local[1] as object), 'the schema refused the second item')
      const lead = threaded[0]?.ok ? threaded[0].lead : assert.fail('the fixture lead was refused')
      assert.notEqual(maker(lead.id), here, 'the lead was made on the thread')
      assert.notEqual(lead.id, again[0]?.ok && again[0].lead.id)
    } finally {
      await checkers.close()
    }
  })

  test('what the thread holds when it ends, and every batch after, is checked here', async () => {
    const checkers = new Checkers(true)
    const held = checkers.check(items(), ctx)
    await checkers.close()
    const later = await checkers.check(items(), ctx)
    for (const checks of [await held, later]) {
      assert.deepEqual(outcome(checks), outcome(checkItems(items(), ctx)))
      assert.equal(checks[0]?.ok && maker(checks[0].lead.id), here)
    }
  })

  test('a batch whose checks throw fails alone, and the thread goes on', async () => {
    const checkers = new Checkers(true)
    try {
      const broken = { ...ctx, group: null as unknown as CheckContext['group'] }
      await assert.rejects(checkers.check(items(), broken), /checking a batch failed: TypeError/)
      const checks = await checkers.check(items(), ctx)
      assert.notEqual(checks[0]?.ok && maker(checks[0].lead.id), here, 'still checked on the thread')
      await assert.rejects(new Checkers(false).check(items(), broken), TypeError)
    } finally {
      await checkers.close()
    }
  })

  test('on one core nothing leaves the event loop', async () => {
    const checkers = new Checkers(false)
    const checks = await checkers.check(items(), ctx)
    assert.equal(checks[0]?.ok && maker(checks[0].lead.id), here)
    await checkers.close()
  })
})
