import { type ChildProcess, spawn } from 'node:child_process'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { Db } from '../../src/store/database.js'
import type { TestDatabase } from '../helper.js'

/** `ventas worker` (operations.md §3) as real child processes, and bounded waits on what they do. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

// A test process that dies without running its `after` hooks still takes its workers with it.
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

export type WorkerProcess = {
  child: ChildProcess
  /** The last 20 kB the process printed (warnings, errors, a crash's stack). */
  output: () => string
  alive: () => boolean
  /** Resolves with how the process ended: `exit <code>` or the signal's name. */
  exited: Promise<string>
}

export function spawnWorker(db: TestDatabase, env: Record<string, string> = {}): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker'], {
    cwd: ROOT,
    env: { ...process.env, ...db.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  live.add(child)
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  let gone = false
  const exited = new Promise<string>((resolve) => {
    const end = (how: string) => {
      gone = true
      live.delete(child)
      resolve(how)
    }
    child.once('exit', (code, signal) => end(signal ?? `exit ${code}`))
    child.once('error', (error) => end(`spawn failed: ${error.message}`))
  })
  return { child, output: () => output, alive: () => !gone, exited }
}

/** SIGTERM (a graceful stop), then SIGKILL for any worker still there after `graceMs`. */
export async function stopWorkers(workers: WorkerProcess[], graceMs = 10_000): Promise<void> {
  await Promise.all(
    workers.map(async (worker) => {
      if (!worker.alive()) return
      worker.child.kill('SIGTERM')
      const how = await Promise.race([worker.exited, delay(graceMs, 'timeout')])
      if (how === 'timeout') {
        worker.child.kill('SIGKILL')
        await worker.exited
      }
    }),
  )
}

/**
 * Polls `check` until it holds. Fails at the deadline, or at once when one of `workers` has died,
 * with what the workers printed: a test never hangs on a worker that is gone.
 */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  options: { timeoutMs: number; workers: WorkerProcess[]; everyMs?: number },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs
  const said = () => options.workers.map((w, i) => `worker ${i}:\n${w.output()}`).join('\n')
  for (;;) {
    if (await check()) return
    const dead = options.workers.find((w) => !w.alive())
    if (dead) throw new Error(`a worker ended (${await dead.exited}) before ${what}\n${said()}`)
    if (Date.now() > deadline) throw new Error(`${what}: not after ${options.timeoutMs} ms\n${said()}`)
    await delay(options.everyMs ?? 100)
  }
}

export type Progress = { jobs: number; processed: number; leads: number }

/** Jobs left in the queue (dead ones included), and leads processed out of all leads. */
export async function progressOf(db: Db): Promise<Progress> {
  const jobs = await db
    .selectFrom('jobs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow()
  const leads = await db
    .selectFrom('leads')
    .select((eb) => [
      eb.fn.countAll<number>().as('all'),
      eb.fn.count<number>(eb.case().when('status', '=', 'processed').then(1).end()).as('processed'),
    ])
    .executeTakeFirstOrThrow()
  return { jobs: Number(jobs.n), processed: Number(leads.processed), leads: Number(leads.all) }
}
