import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { newId } from '../domain/ids.js'
import { type CheckContext, checkItems, type ItemCheck } from './checking.js'

/**
 * The thread's young generation: semi-spaces of 2 MB instead of V8's 16. A batch's checks make
 * only short-lived objects, so more frequent, smaller scavenges cost it little. In `ventas serve`
 * under batches the thread held 56–58 MB of heap for 12 MB live; with this bound and the process's
 * heap growing factor of two (cli/heap.ts) 29–30 MB; with either alone 40–57 MB (at 100,000
 * prospects). No cost in leads/s we could measure (BENCHMARKS.md, target 9).
 */
const THREAD_OPTIONS = { resourceLimits: { maxYoungGenerationSizeMb: 4 } }

type Pending = {
  items: unknown[]
  ctx: CheckContext
  resolve: (checks: ItemCheck[]) => void
  reject: (error: Error) => void
}

/**
 * Checks the leads of a batch on a thread of its own (checker-thread.ts), when the machine has a
 * second core: checking costs about 20 µs a lead, a third of a batch's time on the event loop, and
 * meanwhile the event loop stores another batch (BENCHMARKS.md, batch intake). Handing a batch
 * over and back costs the event loop about 4 µs a lead. Single leads are checked in the request,
 * where the hand-over would add latency and save nothing.
 *
 * The thread starts with the first batch, and costs the process memory: 10 MB loaded, about
 * 30 MB of heap under batches (THREAD_OPTIONS).
 * If it ever ends, the batches it held and every later one are checked on the event loop
 * (`onEnd` hears why). Either place gives the same answers: the thread gets copies of the items
 * and of the context's plain data, and the ids of the leads are made here, in order, as they are
 * for single leads (ids.ts: exact order within a process).
 */
export class Checkers {
  private worker: Worker | undefined
  private readonly pending = new Map<number, Pending>()
  private nextId = 0
  private failed = false

  private readonly threaded: boolean
  private readonly onEnd: (error: Error) => void

  /** `threaded` defaults to whether the machine has a second core. */
  constructor(options: { threaded?: boolean; onEnd?: (error: Error) => void } = {}) {
    this.threaded = options.threaded ?? availableParallelism() > 1
    this.onEnd = options.onEnd ?? (() => undefined)
  }

  check(items: unknown[], ctx: CheckContext): Promise<ItemCheck[]> {
    if (!this.threaded || this.failed) return new Promise((resolve) => resolve(checkItems(items, ctx)))
    this.worker ??= this.start()
    const id = this.nextId++
    const worker = this.worker
    const { id: integrationId, accountId, groupId } = ctx.integration
    return new Promise((resolve, reject) => {
      this.pending.set(id, { items, ctx, resolve, reject })
      // While it holds a batch the thread keeps the process alive, so that its answer, or the
      // news that it ended, arrives; idle, it does not hold the process open.
      if (this.pending.size === 1) worker.ref()
      try {
        worker.postMessage({
          id,
          items,
          ctx: { ...ctx, integration: { id: integrationId, accountId, groupId } },
        })
      } catch (error) {
        this.pending.delete(id)
        if (this.pending.size === 0) worker.unref()
        reject(error)
      }
    })
  }

  /**
   * Ends the thread; batches it still holds are checked here. A closing thread holds the process
   * open until it has exited, even when an answer comes in meanwhile (which would otherwise let go
   * of an idle thread): else the process could run out of other work before the thread's exit
   * reached it, and this would never settle, a shutdown cut short (checkers.test.ts).
   */
  async close(): Promise<void> {
    const worker = this.worker
    this.worker = undefined
    this.failed = true
    worker?.ref()
    await worker?.terminate()
    this.checkHere()
  }

  private start(): Worker {
    // The thread runs the same files as this one: the build's .js, or under tsx (the tests,
    // `npm run bench`) the sources, which a worker thread loads only once tsx is registered in it.
    const sources = import.meta.url.endsWith('.ts')
    const entry = new URL(`./checker-thread.${sources ? 'ts' : 'js'}`, import.meta.url)
    const worker = sources
      ? new Worker(
          `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}) })`,
          { ...THREAD_OPTIONS, eval: true },
        )
      : new Worker(entry, THREAD_OPTIONS)
    worker.unref()
    // A batch whose checks threw (a bug, as it would be here) fails alone; the thread goes on.
    worker.on('message', ({ id, checks, error }: { id: number; checks?: ItemCheck[]; error?: string }) => {
      const pending = this.pending.get(id)
      this.pending.delete(id)
      if (this.pending.size === 0 && this.worker === worker) worker.unref() // a closing thread stays held
      if (!pending) return
      if (!checks) return pending.reject(new Error(`checking a batch failed: ${error}`))
      for (const check of checks) if (check.ok) check.lead.id = newId(pending.ctx.at)
      pending.resolve(checks)
    })
    const end = (error: Error) => {
      if (this.worker !== worker) return
      this.worker = undefined
      this.failed = true
      this.onEnd(error)
      void worker.terminate()
      this.checkHere()
    }
    worker.on('error', end)
    worker.on('messageerror', end)
    worker.on('exit', (code) => end(new Error(`the checker thread exited with code ${code}`)))
    return worker
  }

  private checkHere(): void {
    for (const [id, { items, ctx, resolve, reject }] of this.pending) {
      this.pending.delete(id)
      try {
        resolve(checkItems(items, ctx))
      } catch (error) {
        reject(error as Error)
      }
    }
  }
}
