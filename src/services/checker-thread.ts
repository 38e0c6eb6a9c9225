import { parentPort } from 'node:worker_threads'
import { type CheckContext, checkItems } from './checking.js'

/** The thread of checkers.ts: checks each batch it is handed and hands the outcome back. */
parentPort?.on('message', ({ id, items, ctx }: { id: number; items: unknown[]; ctx: CheckContext }) => {
  try {
    parentPort?.postMessage({ id, checks: checkItems(items, ctx) })
  } catch (error) {
    parentPort?.postMessage({ id, error: error instanceof Error ? error.stack : String(error) })
  }
})
