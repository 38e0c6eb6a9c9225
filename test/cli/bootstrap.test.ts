import assert from 'node:assert/strict'
import { type ChildProcessByStdio, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import type { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createTestDatabase, ENGINE, type TestDatabase } from '../helper.js'

/**
 * operations.md §1–§3 as a newcomer meets them: `npm start` on an empty database builds, bootstraps
 * an account, prints a working key and a request to try once, and stops with exit 0 on SIGTERM;
 * later starts print only the URLs and the first key keeps working. These run the build
 * (dist/main.js), as users do; the rest of the suite runs the sources.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const execFileAsync = promisify(execFile)
const FIRST_START_MS = 60_000 // `npm start` compiles the project first

type Started = {
  child: ChildProcessByStdio<null, Readable, Readable>
  stdout: string
  stderr: string
  /** Settles once the process has exited and its output has all been read. */
  exited: Promise<[number | null, NodeJS.Signals | null]>
}

/** Its own process group, so `after` can kill npm and the server it spawned together. */
function start(command: string, args: string[], env: Record<string, string>): Started {
  const child = spawn(command, args, {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const started: Started = {
    child,
    stdout: '',
    stderr: '',
    exited: once(child, 'close') as Started['exited'],
  }
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    started.stdout += chunk
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    started.stderr += chunk
  })
  return started
}

/** Resolves when stdout matches; rejects if the process exits first or `ms` pass. */
function waitForOutput(started: Started, pattern: RegExp, ms: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const stop = () => {
      clearTimeout(timer)
      started.child.stdout.off('data', check)
      started.child.off('exit', exited)
    }
    const fail = (why: string) => {
      stop()
      reject(new Error(`${why} before printing ${pattern}\n${started.stdout}\n${started.stderr}`))
    }
    const check = () => {
      const match = pattern.exec(started.stdout)
      if (!match) return
      stop()
      resolve(match)
    }
    const exited = (code: number | null) => fail(`exited with ${code}`)
    const timer = setTimeout(() => fail(`${ms} ms passed`), ms)
    started.child.stdout.on('data', check)
    started.child.once('exit', exited)
    check()
  })
}

async function killGroup(started: Started | undefined): Promise<void> {
  if (!started?.child.pid) return
  try {
    process.kill(-started.child.pid, 'SIGKILL')
  } catch {
    return // the group is already gone
  }
  if (started.child.exitCode === null && started.child.signalCode === null) await started.exited
}

/** The `node … serve` process npm started (npm runs it under `sh -c`), found in npm's process group. */
async function serverUnder(npm: Started): Promise<number> {
  const pattern = '^[^ ]*node dist/main\\.js serve'
  const { stdout } = await execFileAsync('pgrep', ['-g', String(npm.child.pid), '-f', pattern])
  const pids = stdout.trim().split('\n').map(Number)
  assert.equal(pids.length, 1, `expected one server process, found ${stdout}`)
  return pids[0] as number
}

const checkCredentials = (url: string, key: string) =>
  fetch(`${url}/v1/checkCredentials?api-key=${encodeURIComponent(key)}`)

/** The request of the banner's `Try:` line: curl [-X METHOD] 'URL' [-H 'name: value']… [-d 'BODY']. */
function fetchCurl(line: string): Promise<Response> {
  const url = /^curl (?:-X \w+ )?'([^']+)'/.exec(line)?.[1]
  assert.ok(url, `not a curl command: ${line}`)
  const headers = Object.fromEntries([...line.matchAll(/-H '([^:']+):\s*([^']*)'/g)].map((h) => [h[1], h[2]]))
  const body = /-d '([^']*)'/.exec(line)?.[1]
  return fetch(url, { method: /-X (\w+)/.exec(line)?.[1] ?? (body ? 'POST' : 'GET'), headers, body })
}

describe(`npm start on an empty database (${ENGINE})`, () => {
  let db: TestDatabase
  let first: Started | undefined
  let second: Started | undefined
  let worker: Started | undefined
  let key: string
  before(async () => {
    db = await createTestDatabase()
  })
  after(async () => {
    await killGroup(first)
    await killGroup(second)
    await killGroup(worker)
    await db.drop()
  })

  test('the first start prints a working key and a request that works, and SIGTERM exits 0', {
    timeout: FIRST_START_MS + 30_000,
  }, async () => {
    first = start('npm', ['start'], db.env)
    const tryLine = (await waitForOutput(first, /^ {2}Try: +(curl .+)$/m, FIRST_START_MS))[1] as string
    const url = /^Ventas is running at (http:\/\/127\.0\.0\.1:\d+)$/m.exec(first.stdout)?.[1]
    assert.ok(url, first.stdout)
    assert.match(
      first.stdout,
      new RegExp(`^ {2}Console: +${url}/console +\\(admin@example\\.com / \\S+\\)$`, 'm'),
    )
    key = /^ {2}API key: +(vk_[\w-]+) /m.exec(first.stdout)?.[1] as string
    assert.ok(key, first.stdout)

    assert.equal((await checkCredentials(url, key)).status, 200)
    assert.equal((await checkCredentials(url, `${key.slice(0, -1)}x`)).status, 401)
    assert.ok(tryLine.includes(`'${url}/v1/`) && tryLine.includes(`api-key=${key}`), tryLine)
    const tried = await fetchCurl(tryLine)
    assert.ok(tried.ok, `${tryLine}\nanswered ${tried.status} ${await tried.text()}`)

    // SIGTERM to the whole group would also reach npm, which then dies of the signal itself
    // rather than reporting its script's status; signalling the server alone lets npm's exit
    // code say how the server ended.
    process.kill(await serverUnder(first), 'SIGTERM')
    assert.deepEqual(await first.exited, [0, null])
  })

  test('a later start prints only the URLs, the first key still works, and SIGTERM exits 0', async (t) => {
    assert.ok(key, 'needs the key of the first start')
    const began = performance.now()
    second = start(process.execPath, ['dist/main.js', 'serve'], db.env)
    await waitForOutput(second, /^ {2}Console: .*$/m, 15_000)
    t.diagnostic(`second start: banner after ${Math.round(performance.now() - began)} ms`)
    const url = /^Ventas is running at (http:\/\/127\.0\.0\.1:\d+)$/m.exec(second.stdout)?.[1]
    assert.ok(url, second.stdout)
    assert.match(second.stdout, new RegExp(`^ {2}API docs: +${url}/docs$`, 'm'))
    assert.doesNotMatch(second.stdout, /API key:|Try:|admin@example\.com|vk_/)

    assert.equal((await checkCredentials(url, key)).status, 200)
    const integration = await fetch(`${url}/v1/integration`, { headers: { 'x-api-key': key } })
    assert.equal(integration.status, 200)
    assert.equal(((await integration.json()) as { name: string }).name, 'Demo API Access')

    // The build's second entry point: a batch is checked on the checker thread, dist/checker-thread.js.
    const batch = await fetch(`${url}/v2/leads/retail/batch`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({
        leads: [{ firstName: 'Ana', phones: ['+54 9 11 5555-4444'], utmSource: 'web' }, {}],
      }),
    })
    assert.equal(batch.status, 202)
    const { results } = (await batch.json()) as { results: { id?: string; error?: { code: string } }[] }
    assert.match(results[0]?.id ?? JSON.stringify(results[0]), /^[0-9a-f]{24}$/)
    assert.equal(results[1]?.error?.code, 'SCHEMA_VALIDATION_FAILED')

    second.child.kill('SIGTERM')
    assert.deepEqual(await second.exited, [0, null])
    // A thread that failed to start is logged, and the batch is checked on the event loop instead.
    assert.doesNotMatch(second.stdout, /checker thread ended/)
  })

  test('the build also runs `doctor` and `worker`, which stops with exit 0 on SIGTERM', async () => {
    const { stdout } = await execFileAsync(process.execPath, ['dist/main.js', 'doctor'], {
      cwd: ROOT,
      env: { ...process.env, ...db.env, PORT: '0' },
    })
    assert.match(stdout, /^ok +database: /m)
    assert.match(stdout, /^ok +migrations: current$/m)
    worker = start(process.execPath, ['dist/main.js', 'worker'], { ...db.env, LOG_LEVEL: 'info' })
    await waitForOutput(worker, /"msg":"worker started"/, 15_000)
    worker.child.kill('SIGTERM')
    assert.deepEqual(await worker.exited, [0, null])
  })
})
