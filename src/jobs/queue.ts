import { type Selectable, sql } from 'kysely'
import { newId } from '../domain/ids.js'
import { JOB_MAX_ATTEMPTS, jobBackoffMs } from '../domain/retry.js'
import { engineOf } from '../store/connect.js'
import {
  chunks,
  type Executor,
  insertRows,
  type JobsTable,
  reusable,
  withPlanMethodOff,
} from '../store/database.js'

/**
 * The job queue is a table in the same database, written in the same transaction as the change
 * that needs the work (operations.md §4). A claim is a lease: `locked_until` expires, so the jobs
 * of a worker that died are claimed again by another once the lease runs out; no sweeper is needed.
 */
export type Job = Selectable<JobsTable>

export async function enqueueJobs(
  db: Executor,
  kind: Job['kind'],
  subjectIds: string[],
  at: number,
): Promise<void> {
  await insertRows(
    db,
    'jobs',
    subjectIds.map((subjectId) => ({
      id: newId(at),
      kind,
      subjectId,
      runAt: at,
      attempts: 0,
      maxAttempts: JOB_MAX_ATTEMPTS,
      createdAt: at,
    })),
  )
}

/**
 * Claims up to `limit` runnable jobs, oldest first. On PostgreSQL `FOR UPDATE SKIP LOCKED` lets
 * any number of workers claim at once without waiting on each other or taking the same job.
 *
 * On PostgreSQL the claim reads `jobs_runnable` in its order and stops after `limit`, whatever
 * the planner's statistics say. A burst of leads fills `jobs` faster than autovacuum analyzes it;
 * planning with the statistics of a nearly empty table, PostgreSQL read every runnable job and
 * sorted them to take the first 200 (12.7 ms a claim at 20,000 queued, BENCHMARKS.md §3), and once
 * analyzed it joined the claimed ids to a scan of the whole table. So the claim runs with sorting
 * off (`withPlanMethodOff`, which leaves the planner the index's order), and the ids are looked up
 * by primary key (`= any(array(…))`).
 */
export async function claimJobs(
  db: Executor,
  worker: string,
  limit: number,
  now: number,
  leaseMs: number,
): Promise<Job[]> {
  const { rows: claimed } = await withPlanMethodOff(db, 'enable_sort', (tx) =>
    runnableClaimed(tx, { worker, lockedUntil: now + leaseMs, now, limit }),
  )
  // UPDATE … RETURNING does not keep the subquery's order (PostgreSQL returns rows as it meets
  // them), and a batch must run oldest first so one person's leads keep their order.
  return claimed.sort((a, b) => a.runAt - b.runAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

/** Every lead worker's claim, several times a second: compiled once (`reusable`). */
const runnableClaimed = reusable(
  (db, v: { worker: string; lockedUntil: number; now: number; limit: number }) => {
    const runnable = db
      .selectFrom('jobs')
      .select('id')
      .where('deadAt', 'is', null)
      .where('runAt', '<=', v.now)
      .where((eb) => eb.or([eb('lockedUntil', 'is', null), eb('lockedUntil', '<', v.now)]))
      .orderBy('runAt')
      .orderBy('id')
      .limit(v.limit)
    return db
      .updateTable('jobs')
      .set((eb) => ({ lockedBy: v.worker, lockedUntil: v.lockedUntil, attempts: eb('attempts', '+', 1) }))
      .where((eb) =>
        engineOf(db) === 'postgres'
          ? eb('id', '=', sql<string>`any(array(${runnable.forUpdate().skipLocked()}))`)
          : eb('id', 'in', runnable),
      )
      .returningAll()
  },
)

/**
 * Claims the job of one subject (the v1 fast path) if it is due and no live worker holds it. A
 * job backing off after a failure is not due, so a request never spends its attempts early.
 */
export async function claimJobOf(
  db: Executor,
  subjectId: string,
  worker: string,
  now: number,
  leaseMs: number,
): Promise<Job | undefined> {
  return db
    .updateTable('jobs')
    .set((eb) => ({ lockedBy: worker, lockedUntil: now + leaseMs, attempts: eb('attempts', '+', 1) }))
    .where('subjectId', '=', subjectId)
    .where('deadAt', 'is', null)
    .where('runAt', '<=', now)
    .where((eb) => eb.or([eb('lockedUntil', 'is', null), eb('lockedUntil', '<', now)]))
    .returningAll()
    .executeTakeFirst()
}

/** Removes the jobs of subjects; called inside the transaction that applies the jobs' effect. */
export async function completeJobsOf(db: Executor, subjectIds: string[]): Promise<void> {
  for (const ids of chunks(subjectIds)) await jobsOfDeleted(db, { ids })
}

const jobsOfDeleted = reusable((db, v: { ids: string[] }) =>
  db.deleteFrom('jobs').where('subjectId', 'in', v.ids),
)

/** A failed attempt: retry later with backoff, or park the job as dead after its last attempt. */
export async function failJob(db: Executor, job: Job, error: string, now: number): Promise<'retry' | 'dead'> {
  const dead = job.attempts >= job.maxAttempts
  await db
    .updateTable('jobs')
    .set({
      lockedBy: null,
      lockedUntil: null,
      lastError: error.slice(0, 2000),
      ...(dead ? { deadAt: now } : { runAt: now + jobBackoffMs(job.attempts) }),
    })
    .where('id', '=', job.id)
    // Only while this worker still holds the job: if its lease ran out and another worker took the
    // job over, the failure of the first must not undo the claim of the second.
    .where('lockedBy', '=', job.lockedBy)
    .execute()
  return dead ? 'dead' : 'retry'
}

/**
 * Puts a claimed job back to wait a little, without counting the attempt: its lead waits for an
 * older lead of the same person (identity.md §6), which is not a failure.
 */
export async function deferJob(db: Executor, job: Job, runAt: number): Promise<void> {
  await db
    .updateTable('jobs')
    .set((eb) => ({ lockedBy: null, lockedUntil: null, runAt, attempts: eb('attempts', '-', 1) }))
    .where('id', '=', job.id)
    .where('lockedBy', '=', job.lockedBy)
    .execute()
}

export type QueueStats = { depth: number; dead: number; oldestRunAt: number | null }

export async function queueStats(db: Executor): Promise<QueueStats> {
  const row = await db
    .selectFrom('jobs')
    .select([
      sql<number>`count(case when dead_at is null then 1 end)`.as('depth'),
      sql<number>`count(dead_at)`.as('dead'),
      sql<number | null>`min(case when dead_at is null then run_at end)`.as('oldestRunAt'),
    ])
    .executeTakeFirstOrThrow()
  return {
    depth: Number(row.depth),
    dead: Number(row.dead),
    oldestRunAt: row.oldestRunAt === null ? null : Number(row.oldestRunAt),
  }
}
