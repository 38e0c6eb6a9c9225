import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { type CheckContext, checkItems, type ItemCheck } from './checking.js'

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
 * The thread starts with the first batch, and costs the process memory: 10 MB loaded, and in
 * `ventas serve` under batches a peak 22–83 MB higher than without it (BENCHMARKS.md, target 9).
 * If it ever fails, the batches it held and every later one are checked on the event loop
 * instead (with a process warning): the checks are pure, so either place answers alike.
 */
export class Checkers {
  private worker: Worker | undefined
  private readonly pending = new Map<number, Pending>()
  private nextId = 0
  private failed = false

  constructor(private readonly threaded = availableParallelism() > 1) {}

  check(items: unknown[], ctx: CheckContext): Promise<ItemCheck[]> {
    if (!this.threaded || this.failed) return new Promise((resolve) => resolve(checkItems(items, ctx)))
    this.worker ??= this.start()
    const id = this.nextId++
    const worker = this.worker
    return new Promise((resolve, reject) => {
      this.pending.set(id, { items, ctx, resolve, reject })
      worker.postMessage({ id, items, ctx })
    })
  }

  /** Ends the thread; batches it still holds are checked here. */
  async close(): Promise<void> {
    const worker = this.worker
    this.worker = undefined
    this.failed = true
    await worker?.terminate()
    this.checkHere()
  }

  private start(): Worker {
    // The thread runs the same files as this one: the build's .js, or under tsx (the tests,
    // `npm run bench`) the sources, which a worker thread loads only once tsx is registered in it.
    const entry = new URL(
      `./checker-thread.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`,
      import.meta.url,
    )
    const worker = entry.pathname.endsWith('.ts')
      ? new Worker(
          `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}) })`,
          { eval: true },
        )
      : new Worker(entry)
    worker.unref()
    // A batch whose checks threw (a bug, as it would be here) fails alone; the thread goes on.
    worker.on('message', ({ id, checks, error }: { id: number; checks?: ItemCheck[]; error?: string }) => {
      const pending = this.pending.get(id)
      this.pending.delete(id)
      if (checks) pending?.resolve(checks)
      else pending?.reject(new Error(`checking a batch failed: ${error}`))
    })
    const fail = () => {
      if (this.worker !== worker) return
      this.worker = undefined
      this.failed = true
      process.emitWarning('The checker thread ended: batches are checked on the event loop from now on')
      this.checkHere()
    }
    worker.on('error', fail)
    worker.on('exit', fail)
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
