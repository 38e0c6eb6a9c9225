import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import type { Worker } from 'node:worker_threads'
import { newId } from '../../src/domain/ids.js'
import { BATCH_BODY_LIMIT, BATCH_MAX_LEADS } from '../../src/http/routes/leads/v2.js'
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
  // email is its only contact), one the alias folding refuses (a category the group lacks), and a
  // valid one whose priority the schema coerces from text: checked in place, the item itself is
  // changed, while a thread checks a copy. That tells where a batch was checked.
  const items = () => [
    fixture('retail-webform.json'),
    { utmSource: 'web', phones: ['+5511987654321'], priority: 'high' },
    { utmSource: 'web', emails: ['blocked@example.com'] },
    { utmSource: 'web', phones: ['+5511987654321'], category: 'no-such-category' },
    { utmSource: 'web', phones: ['+5511912345678'], priority: '2' },
  ]
  const checkedInPlace = (sent: ReturnType<typeof items>) => sent[4]?.priority === 2
  /** A check as it reads wherever it ran, but for the lead ids, compared apart. */
  const outcome = (checks: ItemCheck[]) =>
    checks.map((c) => (c.ok ? { ...c, lead: { ...c.lead, id: 'made' } } : c))
  const ids = (checks: ItemCheck[]) => checks.flatMap((c) => (c.ok ? [c.lead.id] : []))

  /** Runs `body` in a process of its own, where nothing else keeps the event loop alive, with `Checkers` and a plain `ctx` in scope. */
  const alone = (body: string) => {
    const script = `const { Checkers } = await import(${JSON.stringify(new URL('../../src/services/checkers.ts', import.meta.url).href)})
const ctx = {
  integration: { id: 'i', accountId: 'a', groupId: 'g' },
  group: { currency: 'BRL', distance: 'km', leadCategories: [], defaultCategory: null, countryCode: 'BR' },
  industry: 'retail',
  blocked: new Set(),
  at: Date.now(),
}
${body}`
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const run = execFile(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script],
        { timeout: 60_000 },
        (_error, stdout, stderr) => resolve({ code: run.exitCode, stdout, stderr }),
      )
    })
  }

  test('the thread answers what checking in place answers; the ids are made here, in order', async () => {
    const checkers = new Checkers({ threaded: true })
    try {
      const [first, second] = [items(), items()]
      const [threaded, again] = await Promise.all([checkers.check(first, ctx), checkers.check(second, ctx)])
      assert.ok(!checkedInPlace(first) && !checkedInPlace(second), 'the thread checked copies')
      const local = checkItems(items(), ctx)
      assert.deepEqual(outcome(threaded), outcome(local))
      assert.deepEqual(outcome(again), outcome(local))
      assert.deepEqual(
        local.map((c) => c.ok),
        [true, false, false, false, true],
      )
      assert.ok('schema' in (local[1] as object), 'the schema refused the second item')
      // Made by this process's counter, so they sort in the order of the batch, batch after batch.
      const made = [...ids(threaded), ...ids(again)]
      assert.equal(made.length, 4)
      assert.ok(made.every((id) => maker(id) === here))
      assert.deepEqual([...made].sort(), made)
    } finally {
      await checkers.close()
    }
  })

  test('the largest batch the route takes is checked on the thread', async () => {
    const checkers = new Checkers({ threaded: true })
    try {
      // As many leads as the route takes, as wide as its body limit allows, each note its own
      // object (the copy to the thread would keep one of a shared object). Only the thread's young
      // generation is bounded today; this holds any bound on its heap to the route's largest batch.
      const largest = () =>
        Array.from({ length: BATCH_MAX_LEADS }, (_, i) => ({
          utmSource: 'web',
          firstName: 'A'.repeat(150),
          lastName: 'B'.repeat(150),
          phones: [`+55119${String(i).padStart(8, '0')}`],
          priority: '2',
          history: [{ type: 'note', content: String(i).padStart(10_000, 'x') }],
        }))
      const sent = largest()
      const bytes = Buffer.byteLength(JSON.stringify({ leads: sent }))
      assert.ok(bytes > 0.99 * BATCH_BODY_LIMIT && bytes < BATCH_BODY_LIMIT, `${bytes} bytes`)
      const checks = await checkers.check(sent, ctx)
      assert.equal(sent[0]?.priority, '2', 'checked on the thread, not in place')
      assert.equal(checks.filter((c) => c.ok).length, BATCH_MAX_LEADS)
      assert.deepEqual(outcome(checks), outcome(checkItems(largest(), ctx)))
    } finally {
      await checkers.close()
    }
  })

  test('the thread keeps a process alive while it holds a batch, and only then', async () => {
    // Nothing else keeps this child's event loop alive: without the thread's hold it would end
    // with the check unanswered (exit 13), and with a hold left after the answer it would not end.
    const child =
      await alone(`const checks = await new Checkers({ threaded: true }).check([{ utmSource: 'web', phones: ['+5511987654321'] }], ctx)
console.log(JSON.stringify(checks.map((c) => c.ok)))`)
    assert.equal(child.code, 0, child.stderr)
    assert.equal(child.stdout.trim(), '[true]')
  })

  /**
   * A batch the thread is sure to still hold when it is ended at once: a thousand items take it
   * milliseconds, ending it takes less. (Five items it sometimes answered first, and then this
   * process, with nothing else to do, could end before the thread's exit reached it.)
   */
  const many = () => Array.from({ length: 200 }, items).flat()

  test('a thread that ends: what it held, and every batch after, is checked in place', async () => {
    const ended: Error[] = []
    const checkers = new Checkers({ threaded: true, onEnd: (error) => ended.push(error) })
    await checkers.check(items(), ctx) // the thread is up
    const held = many()
    const holding = checkers.check(held, ctx)
    // As a crash would end it (the class keeps its thread to itself). Awaited after the batch it
    // held: answered by the thread instead, the batch fails the test here rather than hang it.
    const terminated = (checkers as unknown as { worker: Worker }).worker.terminate()
    const later = items()
    for (const [sent, checks] of [
      [held, await holding],
      [later, await checkers.check(later, ctx)],
    ] as const) {
      assert.ok(checkedInPlace(sent))
      assert.deepEqual(outcome(checks), outcome(checkItems(sent === held ? many() : items(), ctx)))
    }
    await terminated
    assert.equal(ended.length, 1)
    assert.match(String(ended[0]?.message), /exited with code 1/)
  })

  test('closing: what the thread holds is checked in place', async () => {
    const checkers = new Checkers({ threaded: true })
    const held = many()
    const holding = checkers.check(held, ctx)
    await checkers.close()
    assert.deepEqual(outcome(await holding), outcome(checkItems(many(), ctx)))
    assert.ok(checkedInPlace(held))
  })

  test("closing settles when the thread's last answer comes in as it ends", async () => {
    // In a process of its own with nothing else to do. The thread answers while this one spins,
    // so the answer is read during close(). Had that answer let go of the thread (as an idle
    // thread is let go), the process would run out of work before the thread's exit reached it,
    // and close() would never settle: exit 13, at the first round.
    const child = await alone(`const lead = () => [{ utmSource: 'web', phones: ['+5511987654321'] }]
for (let round = 0; round < 3; round++) {
  const checkers = new Checkers({ threaded: true })
  await checkers.check(lead(), ctx)
  const holding = checkers.check(lead(), ctx)
  const until = Date.now() + 50
  while (Date.now() < until) {}
  await checkers.close()
  await holding
}
console.log('closed')`)
    assert.equal(child.code, 0, child.stderr)
    assert.equal(child.stdout.trim(), 'closed')
  })

  test('a batch whose checks throw fails alone, with its stack, and the thread goes on', async () => {
    const checkers = new Checkers({ threaded: true })
    try {
      const broken = { ...ctx, group: null as unknown as CheckContext['group'] }
      await assert.rejects(
        checkers.check(items(), broken),
        /checking a batch failed: TypeError.*\n\s+at checkLead/,
      )
      const sent = items()
      await checkers.check(sent, ctx)
      assert.ok(!checkedInPlace(sent), 'still checked on the thread')
      await assert.rejects(new Checkers({ threaded: false }).check(items(), broken), TypeError)
    } finally {
      await checkers.close()
    }
  })

  test('without a thread (one core), a batch is checked in place', async () => {
    const checkers = new Checkers({ threaded: false })
    const sent = items()
    const checks = await checkers.check(sent, ctx)
    assert.ok(checkedInPlace(sent))
    assert.deepEqual(outcome(checks), outcome(checkItems(items(), ctx)))
    await checkers.close()
  })
})
