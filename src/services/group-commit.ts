import type { Db, Tx } from '../store/database.js'
import { withRaceRetry } from './merging.js'

type Pending<In, Out> = { input: In; resolve: (value: Out) => void; reject: (error: unknown) => void }

/** At most this many callers share one transaction, so none waits behind an unbounded queue. */
const MAX_SHARED = 64

/**
 * Group commit: concurrent callers' inputs are handled by one call of `work`, in one transaction,
 * and each caller's promise settles only once that transaction has committed. One commit (one
 * fsync on SQLite, one round trip on PostgreSQL) then stands for a burst of requests instead of
 * one each. Inputs that arrive while a commit is under way form the next group.
 *
 * When a shared transaction fails (a lost race, one bad row), nothing of it was committed; each
 * input is then handled again in a transaction of its own (retried on a lost race), so a failure
 * reaches only the caller it belongs to.
 */
export class GroupCommit<In, Out> {
  private queue: Pending<In, Out>[] = []
  private draining = false

  constructor(
    private readonly db: Db,
    private readonly work: (tx: Tx, inputs: In[]) => Promise<Out[]>,
  ) {}

  add(input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ input, resolve, reject })
      if (this.draining) return
      this.draining = true
      // The requests already read in this turn of the event loop join the first group.
      setImmediate(() => void this.drain())
    })
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.queue.splice(0, MAX_SHARED)
      if (group.length > 1 && (await this.together(group))) continue
      for (const pending of group) await this.alone(pending)
    }
    this.draining = false
  }

  /** True when the group committed and every caller has its answer. */
  private async together(group: Pending<In, Out>[]): Promise<boolean> {
    let outputs: Out[]
    try {
      outputs = await this.db.transaction().execute((tx) =>
        this.work(
          tx,
          group.map((p) => p.input),
        ),
      )
    } catch {
      return false
    }
    for (const [i, pending] of group.entries()) pending.resolve(outputs[i] as Out)
    return true
  }

  private async alone(pending: Pending<In, Out>): Promise<void> {
    try {
      const [output] = await withRaceRetry(this.db, (tx) => this.work(tx, [pending.input]))
      pending.resolve(output as Out)
    } catch (error) {
      pending.reject(error)
    }
  }
}
