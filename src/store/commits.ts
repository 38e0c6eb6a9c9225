import { CompiledQuery } from 'kysely'
import pg from 'pg'
import type { Storage } from '../config.js'
import type { Db } from './database.js'

/** The PostgreSQL channel a transaction that queued jobs notifies (`enqueueJobs`). */
export const JOBS_CHANNEL = 'ventas_jobs'
const DATA_VERSION = CompiledQuery.raw('pragma data_version')
/** How long a lost LISTEN connection waits before it connects again; the worker's poll covers the gap. */
const RELISTEN_MS = 1_000

/**
 * Calls `onCommit` soon after another process commits work to the same database: a
 * `ventas worker` beside `ventas api` learns of a new lead at once instead of at its next poll
 * (250 ms, most of a lead's way to its webhook when nothing else wakes the worker).
 *
 * SQLite: `data_version` changes when any other connection commits, never for this connection's
 * own commits; it is read every `everyMs` (a statement of a few microseconds). PostgreSQL: a
 * connection of its own LISTENs on the channel every transaction that queues jobs notifies.
 * Returns a function that stops it.
 */
export function watchOtherCommits(
  db: Db,
  storage: Storage,
  onCommit: () => void,
  everyMs = 5,
): () => Promise<void> {
  return storage.engine === 'postgres'
    ? listen(storage.url, onCommit)
    : pollDataVersion(db, onCommit, everyMs)
}

function pollDataVersion(db: Db, onCommit: () => void, everyMs: number): () => Promise<void> {
  let last: unknown
  let reading = false
  const timer = setInterval(() => {
    if (reading) return
    reading = true
    db.executeQuery<Record<string, number>>(DATA_VERSION)
      .then(({ rows }) => {
        const version = Object.values(rows[0] ?? {})[0]
        if (last !== undefined && version !== last) onCommit()
        last = version
      })
      // A closed or busy database: the next turn reads again, and the worker's own poll still runs.
      .catch(() => undefined)
      .finally(() => {
        reading = false
      })
  }, everyMs)
  timer.unref()
  return async () => clearInterval(timer)
}

function listen(url: string, onCommit: () => void): () => Promise<void> {
  let client: pg.Client | undefined
  let stopped = false
  let retry: NodeJS.Timeout | undefined
  const connect = () => {
    const current = new pg.Client({ connectionString: url, application_name: 'ventas worker: listen' })
    client = current
    let lost = false
    // Called by an error, by the connection ending, or by a failed LISTEN: once per connection.
    const again = () => {
      if (lost) return
      lost = true
      current.on('error', () => undefined)
      void current.end().catch(() => undefined)
      if (!stopped) retry = setTimeout(connect, RELISTEN_MS).unref()
    }
    current.on('notification', () => onCommit())
    current.on('error', again)
    current.on('end', again)
    current
      .connect()
      .then(() => current.query(`listen ${JOBS_CHANNEL}`))
      // Work queued while it was not listening is found by the worker's poll; this wakes it now.
      .then(() => onCommit())
      .catch(again)
  }
  connect()
  return async () => {
    stopped = true
    clearTimeout(retry)
    await client?.end().catch(() => undefined)
  }
}
