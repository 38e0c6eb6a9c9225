import { getHeapStatistics, setFlagsFromString } from 'node:v8'

/**
 * Sets V8's heap growing factor to 2 for a long-running process (`serve`, `api`, `worker`): after
 * each full collection the heap may grow to twice what survived before the next one.
 *
 * Where V8's heap limit is 2 GB or more (any machine of 8 GB or more) V8 chooses up to four times,
 * and under a steady flow of leads it does: `ventas serve` under batches kept 38 MB live in a heap
 * of up to 210 MB, the rest garbage waiting for the next collection. Two is V8's own ceiling on
 * small machines. With it the main heap peaked at 121–127 MB instead of 179–210, at no cost in
 * leads/s or latency we could measure (BENCHMARKS.md, target 9).
 *
 * The flag replaces V8's choice rather than capping it, so where V8 would grow by less (idle, or
 * near its limit) it grows by two as well: a full collection still shrinks the heap to what is
 * live, only the next one comes later. V8 reads the flag at every collection, so setting it after
 * start takes effect (test/cli/heap.test.ts checks it does on this Node). Left alone: a heap limit
 * under 2 GB (`heap_size_limit` counts the young generation too, so the edge is approximate),
 * where V8 already grows by at most about two, and a growing percent given to node itself.
 */
export function boundHeapGrowth(): void {
  const given = process.execArgv.some((arg) => arg.replaceAll('_', '-').startsWith('--heap-growing-percent'))
  if (given || getHeapStatistics().heap_size_limit < 2 * 1024 ** 3) return
  setFlagsFromString('--heap-growing-percent=100')
}
