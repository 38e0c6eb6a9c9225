import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { describe, test } from 'node:test'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)
const HEAP = new URL('../../src/cli/heap.ts', import.meta.url).href

/**
 * The growing factor V8 chose at a full collection made after `boundHeapGrowth()`, in a node
 * started with `flags`: read from V8's own trace of the limit it set, so a Node whose V8 ignored
 * the flag set after start would fail here.
 */
async function factorAfterBound(flags: string[]): Promise<number> {
  const script = `const { boundHeapGrowth } = await import(${JSON.stringify(HEAP)})
boundHeapGrowth()
console.log('bound')
globalThis.gc()`
  const { stdout } = await execFileAsync(process.execPath, [
    ...flags,
    '--expose-gc',
    '--trace-gc-verbose',
    '--import',
    'tsx',
    '--input-type=module',
    '-e',
    script,
  ])
  const after = stdout.slice(stdout.indexOf('bound\n'))
  const limits = [...after.matchAll(/\[HeapController\] Limit: .*\((\d+\.\d+)\)/g)]
  assert.ok(limits.length > 0, `no limit traced after the bound:\n${after.slice(0, 2000)}`)
  return Number(limits.at(-1)?.[1])
}

describe('the heap growing factor of the server commands', () => {
  test('where V8 would grow the heap by four times, it grows by two', async () => {
    assert.equal(await factorAfterBound(['--max-old-space-size=4096']), 2)
  })

  test('a growing percent given to node wins, in either spelling', async () => {
    assert.equal(await factorAfterBound(['--heap-growing-percent=50', '--max-old-space-size=4096']), 1.5)
    assert.equal(await factorAfterBound(['--heap_growing_percent=30', '--max-old-space-size=4096']), 1.3)
  })

  test('under a 2 GB heap limit V8 keeps its own, smaller factor', async () => {
    const factor = await factorAfterBound(['--max-old-space-size=1024'])
    assert.ok(factor < 2, `factor ${factor}`)
  })
})
