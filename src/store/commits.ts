import type { FastifyBaseLogger } from 'fastify'
import { CompiledQuery } from 'kysely'
import type pg from 'pg'
import type { Storage } from '../config.js'
import { pgDriver } from './connect.js'
import type { Db } from './database.js'

const DATA_VERSION = CompiledQuery.raw('pragma data_version')
/**
 * PostgreSQL's channels belong to the database, not the schema: one per schema, so installs (and
 * test runs) sharing a database in schemas of their own never wake each other. A hash keeps the
 * name a plain identifier well inside the 63-byte limit, whatever the schema is called.
 */
const CHANNEL = `'ventas_jobs_' || left(md5(current_schema()), 16)`
const NOTIFY = CompiledQuery.raw(`select pg_notify(${CHANNEL}, '')`)
/** How long a lost LISTEN connection waits before it connects again; the worker's poll covers the gap. */
const RELISTEN_MS = 1_000

export type Watch = {
  /** Settles once it watches: the first reading taken, or the LISTEN in place. */
  ready: Promise<void>
  stop: () => Promise<void>
}

/**
 * Calls `onCommit` soon after another process commits work to the same database: a
 * `ventas worker` beside `ventas api` learns of a new lead at once instead of at its next poll
 * (250 ms, most of a lead's way to its webhook at low rates, when the worker sleeps between them).
 *
 * SQLite: `data_version` changes when any other connection commits, never for this connection's
 * own commits; it is read every `everyMs` (a statement of a few microseconds). PostgreSQL: a
 * connection of its own LISTENs on the channel `announceJobs` notifies.
 */
export function watchOtherCommits(
  db: Db,
  storage: Storage,
  onCommit: () => void,
  options: { everyMs?: number; log?: Pick<FastifyBaseLogger, 'warn'> } = {},
): Watch {
  return storage.engine === 'postgres'
    ? listen(storage.url, onCommit, options.log)
    : pollDataVersion(db, onCommit, options.everyMs ?? 5)
}

/**
 * On PostgreSQL, tells the workers of every process that jobs were committed: a NOTIFY of its own,
 * after the commit (a NOTIFY inside the leads' transaction would take PostgreSQL's notify lock
 * and hold it through the commit, so the commits of every API process would queue on it). At most
 * one is in flight; calls meanwhile are folded into one more. On SQLite it does nothing: workers
 * there read `data_version`.
 */
export function jobsAnnouncer(db: Db, storage: Storage): () => void {
  if (storage.engine !== 'postgres') return () => {}
  let sending = false
  let again = false
  const send = () => {
    sending = true
    db.executeQuery(NOTIFY)
      // A worker that misses it finds the jobs at its poll.
      .catch(() => undefined)
      .finally(() => {
        sending = false
        if (again) {
          again = false
          send()
        }
      })
  }
  return () => {
    if (sending) again = true
    else send()
  }
}

function pollDataVersion(db: Db, onCommit: () => void, everyMs: number): Watch {
  let last: unknown
  let reading: Promise<void> | undefined
  const read = () => {
    reading ??= db
      .executeQuery<Record<string, number>>(DATA_VERSION)
      .then(({ rows }) => {
        const version = Object.values(rows[0] ?? {})[0]
        if (last !== undefined && version !== last) onCommit()
        last = version
      })
      // A closed or busy database: the next turn reads again, and the worker's own poll still runs.
      .catch(() => undefined)
      .finally(() => {
        reading = undefined
      })
    return reading
  }
  const ready = read()
  const timer = setInterval(read, everyMs)
  timer.unref()
  return {
    ready,
    stop: async () => {
      clearInterval(timer)
      await reading
    },
  }
}

function listen(url: string, onCommit: () => void, log?: Pick<FastifyBaseLogger, 'warn'>): Watch {
  let client: pg.Client | undefined
  let stopped = false
  let retry: NodeJS.Timeout | undefined
  let listening: () => void = () => {}
  const ready = new Promise<void>((resolve) => {
    listening = resolve
  })
  const connect = () => {
    // keepAlive: a connection cut without a word (a NAT, a failover) errors instead of going deaf.
    const current = new (pgDriver().Client)({
      connectionString: url,
      keepAlive: true,
      application_name: 'ventas worker: listen',
    })
    client = current
    let lost = false
    // Called by an error, by the connection ending, or by a failed LISTEN: once per connection.
    const again = (error?: Error) => {
      if (lost) return
      lost = true
      current.on('error', () => undefined)
      void current.end().catch(() => undefined)
      if (stopped) return
      log?.warn({ reason: error?.message ?? 'connection ended' }, 'LISTEN for new jobs lost; listening again')
      retry = setTimeout(connect, RELISTEN_MS).unref()
    }
    current.on('notification', () => onCommit())
    current.on('error', again)
    current.on('end', () => again())
    current
      .connect()
      .then(() => current.query<{ channel: string }>(`select ${CHANNEL} as channel`))
      .then(({ rows }) => current.query(`listen ${rows[0]?.channel}`))
      .then(() => {
        listening()
        // Work queued while it was not listening is found by the worker's poll; this wakes it now.
        onCommit()
      })
      .catch(again)
  }
  connect()
  return {
    ready,
    stop: async () => {
      stopped = true
      clearTimeout(retry)
      listening()
      await client?.end().catch(() => undefined)
    },
  }
}
