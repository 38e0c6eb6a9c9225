import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Idle } from '../../src/jobs/idle.js'

/** Resolves with how the sleep ended: woken, or still asleep after `ms` (its own timer is a minute). */
async function ending(sleep: Promise<void>, ms = 1_000): Promise<'woken' | 'asleep'> {
  let timer: NodeJS.Timeout | undefined
  const asleep = new Promise<'asleep'>((resolve) => {
    timer = setTimeout(() => resolve('asleep'), ms)
  })
  const result = await Promise.race([sleep.then(() => 'woken' as const), asleep])
  clearTimeout(timer)
  return result
}

describe('the idle sleep of a worker loop', () => {
  test('a nudge while the loop is busy ends its next sleep at once', async () => {
    const idle = new Idle()
    idle.nudge()
    assert.equal(await ending(idle.sleep(60_000)), 'woken')
    // Kept once, not for ever.
    const next = idle.sleep(60_000)
    assert.equal(await ending(next, 50), 'asleep')
    idle.rouse()
    await next
  })

  test('a wake after a sleep that ran out its time is kept for the next one', async () => {
    const idle = new Idle()
    await idle.sleep(1)
    idle.rouse()
    assert.equal(await ending(idle.sleep(60_000)), 'woken')
  })

  test('a nudge wakes a sleeping loop; nudges soon after a wake gather, then wake it too', async () => {
    const idle = new Idle(20)
    const first = idle.sleep(60_000)
    idle.nudge()
    assert.equal(await ending(first), 'woken')
    const second = idle.sleep(60_000)
    idle.nudge()
    idle.nudge()
    assert.equal(await ending(second), 'woken')
  })

  test('stop ends the sleep and drops a gather in progress', async () => {
    const idle = new Idle(60_000)
    const first = idle.sleep(60_000)
    idle.nudge()
    assert.equal(await ending(first), 'woken')
    const second = idle.sleep(60_000)
    idle.nudge() // waits out the minute's gather
    assert.equal(await ending(second, 50), 'asleep')
    idle.stop()
    assert.equal(await ending(second), 'woken')
  })
})
