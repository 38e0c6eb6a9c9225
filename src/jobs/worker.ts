import { hostname } from 'node:os'
import type { FastifyBaseLogger } from 'fastify'
import { newId } from '../domain/ids.js'
import {
  type AppliedResult,
  LEADS_PER_TRANSACTION,
  type ProcessResult,
  processLead,
  processLeads,
} from '../services/processing.js'
import { type Db, unflushedTransaction } from '../store/database.js'
import { findLead } from '../store/leads.js'
import { Idle } from './idle.js'
import { claimJobOf, claimJobs, deferJob, failJob, type Job } from './queue.js'

export type WorkerOptions = {
  /** How many jobs one claim takes; by default one transaction's worth (processing.ts). */
  batch?: number
  /** How long the loop sleeps once a claim found every due job (a nudge wakes it sooner). */
  pollMs?: number
  /** How long nudges gather before an idle worker that woke a moment ago claims (see GATHER_MS). */
  gatherMs?: number
  /** How long a claim holds a job; a worker that dies frees its jobs when this runs out. */
  leaseMs?: number
  now?: () => number
  log?: Pick<FastifyBaseLogger, 'error' | 'warn' | 'info'>
  /** Told of each lead this worker applied (metrics). */
  onProcessed?: (result: AppliedResult) => void
}

export const DEFAULT_LEASE_MS = 30_000

/**
 * Processes lead jobs: claims a batch, applies it in transactions of up to LEADS_PER_TRANSACTION
 * leads (processing.ts), and on a lead's failure schedules a retry with backoff (domain/retry.ts)
 * or parks the job as dead. Runs inside `ventas serve` and alone as `ventas worker`; any number of
 * them may share a PostgreSQL database.
 */
export class LeadWorker {
  readonly name = `${hostname()}:${process.pid}:${newId().slice(-6)}`
  private running = false
  private loop: Promise<void> | undefined
  private readonly idle: Idle
  private readonly batch: number
  private readonly pollMs: number
  private readonly leaseMs: number
  private readonly now: () => number
  /** The soonest a job this pass put back is due again. */
  private deferredUntil = Number.POSITIVE_INFINITY

  constructor(
    private readonly db: Db,
    private readonly options: WorkerOptions = {},
  ) {
    this.batch = options.batch ?? LEADS_PER_TRANSACTION
    this.pollMs = options.pollMs ?? 250
    this.idle = new Idle(options.gatherMs)
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS
    this.now = options.now ?? Date.now
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.loop = this.run()
  }

  /** Stops claiming; resolves when the job in hand is finished. */
  async stop(): Promise<void> {
    this.running = false
    this.idle.stop()
    await this.loop
  }

  /** New work was committed: skip the rest of the idle sleep (see Idle). */
  nudge(): void {
    this.idle.nudge()
  }

  /**
   * Claims and processes one batch; returns how many jobs it handled. The batch is applied in
   * shared transactions (processLeads); a lead that failed there, or had to wait for an older lead
   * of its person, runs again alone, where waiting, retries and failures are handled one at a time.
   */
  async runOnce(): Promise<number> {
    // A claim lost in a power cut only lets the jobs be claimed again.
    const jobs = await unflushedTransaction(this.db, (tx) =>
      claimJobs(tx, this.name, this.batch, this.now(), this.leaseMs),
    )
    // Each transaction's leads are reported as it commits, so their webhooks need not wait for the batch.
    const applied = await processLeads(
      this.db,
      jobs.map((job) => job.subjectId),
      this.now,
      (committed) => {
        for (const result of committed) if (result.status !== 'deferred') this.options.onProcessed?.(result)
      },
    )
    for (const job of jobs) {
      const result = applied.get(job.subjectId)
      if (result && result.status !== 'deferred') continue
      try {
        const held = await runHeld(this.db, job, this.now, this.options.onProcessed)
        if (held.status === 'deferred')
          this.deferredUntil = Math.min(this.deferredUntil, deferredUntil(held, this.now))
      } catch (error) {
        this.options.log?.error(
          { err: error, jobId: job.id, leadId: job.subjectId, attempt: job.attempts },
          'lead job failed',
        )
      }
    }
    return jobs.length
  }

  /**
   * Claims again at once only after a full batch. A claim that took fewer found every due job:
   * claiming again would take nothing (at 200 leads/s, half of `ventas worker`'s job claims were
   * such claims). Jobs committed meanwhile have woken the idle sleep, which then ends at once, and
   * a job this pass put back for a moment (its person's older lead first) ends it when due.
   */
  private async run(): Promise<void> {
    while (this.running) {
      let handled = 0
      this.deferredUntil = Number.POSITIVE_INFINITY
      try {
        handled = await this.runOnce()
      } catch (error) {
        this.options.log?.error({ err: error }, 'lead worker could not claim jobs')
      }
      const until = Math.max(0, Math.min(this.pollMs, this.deferredUntil - this.now()))
      if (handled < this.batch && this.running) await this.idle.sleep(until)
    }
  }
}

/** How long a lead waits before looking again for the older lead of its person to be applied. */
const DEFER_MS = 50

/**
 * Applies the older lead a v1 request waits for, when it is due and no worker holds it, so a v1
 * answer never waits on an idle queue (an API process with no worker beside it). Its own older
 * leads are helped the same way. True when that lead is now applied.
 */
async function helpWith(
  db: Db,
  leadId: string,
  now: () => number,
  onProcessed?: (result: AppliedResult) => void,
): Promise<boolean> {
  const job = await claimLeadJob(db, leadId, now())
  if (!job) return false
  const result = await runHeld(db, job, now, onProcessed).catch(() => undefined)
  return result !== undefined && result.status !== 'deferred'
}

/**
 * Runs a job this process holds: applies its lead; when an older lead of the same person must go
 * first, applies that one too if it can (due, unheld), else puts the job back until the older
 * one's turn (a moment, or its retry time when it is backing off). On failure records it (retry
 * with backoff, or dead) and throws.
 */
async function runHeld(
  db: Db,
  job: Job,
  now: () => number,
  onProcessed?: (result: AppliedResult) => void,
): Promise<ProcessResult> {
  for (;;) {
    let result: ProcessResult
    try {
      result = await processLead(db, job.subjectId, now)
    } catch (error) {
      await failJob(db, job, (error as Error).stack ?? String(error), now())
      throw error
    }
    if (result.status !== 'deferred') {
      onProcessed?.(result)
      return result
    }
    if (!(await helpWith(db, result.waitingFor, now, onProcessed))) {
      await deferJob(db, job, deferredUntil(result, now))
      return result
    }
  }
}

/** When a job put back behind its person's older lead is due again. */
function deferredUntil(result: ProcessResult & { status: 'deferred' }, now: () => number): number {
  return Math.max(now(), result.until) + DEFER_MS
}

/**
 * The v1 path for a lead its request could not apply as it stored it (an older lead of the
 * person was queued, applying failed): apply it in the request's own process, through the same
 * job and the same code as the worker; when a worker holds the job, or an older lead of
 * the same person held elsewhere must go first, wait for the outcome. Resolves with it, or null if
 * the lead is still queued at the deadline.
 */
export async function processLeadNow(
  db: Db,
  leadId: string,
  now: () => number,
  onProcessed?: (result: AppliedResult) => void,
  timeoutMs = 10_000,
): Promise<AppliedResult | null> {
  const deadline = Date.now() + timeoutMs
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    const job = await claimLeadJob(db, leadId, now())
    if (job) {
      const result = await runHeld(db, job, now, onProcessed)
      if (result.status !== 'deferred') return result
    } else {
      const lead = await findLead(db, leadId)
      if (!lead) return { status: 'missing', leadId }
      if (lead.status === 'processed')
        return { status: 'processed', leadId, prospectId: lead.prospectId as string, merged: lead.merged }
      if (lead.status === 'rejected')
        return { status: 'rejected', leadId, error: lead.error as { code: string; message: string } }
    }
    if (Date.now() >= deadline) return null
    await new Promise((resolve) => setTimeout(resolve, wait))
  }
}

/** Claims one lead's job for this process, if it is due and unheld; the claim needs no fsync. */
async function claimLeadJob(db: Db, leadId: string, now: number): Promise<Job | undefined> {
  return unflushedTransaction(db, (tx) => claimJobOf(tx, leadId, `v1:${process.pid}`, now, DEFAULT_LEASE_MS))
}
