import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/**
 * SQLite's WAL is copied back into the database file by a checkpoint. By default the connection
 * that commits runs one whenever the WAL passes 1,000 pages, inside that commit: better-sqlite3
 * is synchronous, so the event loop (every request of the process) waits while thousands of pages
 * are read, written and flushed. Measured processing 20,000 leads: 8.4 ms per commit with those
 * checkpoints, 4.4 ms without. Here a thread of its own, on a connection of its own, runs a
 * PASSIVE checkpoint every `everyMs`: it copies what is committed without taking the write lock,
 * so commits go on meanwhile, and the writer restarts the WAL once it has all been copied.
 *
 * The committing connection keeps an automatic checkpoint at FALLBACK_PAGES, far above what the
 * thread lets the WAL reach, so the WAL stays bounded even if the thread falls behind.
 */
export const FALLBACK_PAGES = 20_000

const CHECKPOINT_LOOP = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const closed = new Int32Array(workerData.closed)
const db = new Database(workerData.path)
db.pragma('busy_timeout = 1000')
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)')
  } catch {
    // Busy or locked by a CLI command's checkpoint: the next turn tries again.
  }
}, workerData.everyMs)
parentPort.once('message', () => {
  clearInterval(timer)
  db.close()
  Atomics.store(closed, 0, 1)
  Atomics.notify(closed, 0)
  parentPort.close()
})
`

export type Checkpointer = { stop: () => void }

/**
 * Starts the thread. `stop` returns once the thread's connection is closed (at most 2 s): callers
 * close their own and may then remove the files, which a connection still open would recreate.
 */
export function startCheckpointer(path: string, everyMs = 250): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3')
  const closed = new SharedArrayBuffer(4)
  const worker = new Worker(CHECKPOINT_LOOP, { eval: true, workerData: { path, driver, everyMs, closed } })
  worker.unref()
  let running = true
  worker.on('error', () => {
    // The fallback checkpoint of the committing connection takes over.
    running = false
  })
  worker.on('exit', () => {
    running = false
  })
  return {
    stop: () => {
      if (!running) return
      running = false
      worker.postMessage('stop')
      Atomics.wait(new Int32Array(closed), 0, 0, 2000)
    },
  }
}
