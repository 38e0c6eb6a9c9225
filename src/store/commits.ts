import { CompiledQuery } from 'kysely'
import { engineOf } from './connect.js'
import type { Db } from './database.js'

const DATA_VERSION = CompiledQuery.raw('pragma data_version')

/**
 * Calls `onCommit` soon after another process commits to the same SQLite database: a
 * `ventas worker` beside `ventas api` learns of a new lead at once instead of at its next poll
 * (250 ms, most of a lead's way to its webhook when nothing else wakes the worker). SQLite's
 * `data_version` changes when any other connection commits, never for this connection's own
 * commits; reading it every `everyMs` costs a statement of a few microseconds. On PostgreSQL it
 * does nothing: workers there learn of new work at their poll. Returns a function that stops it.
 */
export function watchOtherCommits(db: Db, onCommit: () => void, everyMs = 5): () => void {
  if (engineOf(db) === 'postgres') return () => {}
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
  return () => clearInterval(timer)
}
