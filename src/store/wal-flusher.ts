import { closeSync, fdatasync, openSync } from 'node:fs'

/**
 * Flushes a SQLite database's write-ahead log to disk in libuv's thread pool, off the event loop.
 * A commit under `synchronous = NORMAL` writes its frames to the WAL without waiting for the disk;
 * once `flush()` resolves they are on it, as a commit under FULL would have left them (FULL is the
 * same write followed by the same fdatasync, made inside the synchronous call). Meanwhile the
 * process goes on reading and checking requests.
 *
 * One flush runs at a time. A caller that comes while one runs waits for the next, since the
 * running one may have begun before that caller's commit; the next then serves every caller that
 * came meanwhile, as one fdatasync.
 */
export class WalFlusher {
  private fd: number | undefined
  private running: Promise<void> | undefined
  private queued: Promise<void> | undefined
  /** Flushes completed, for tests and benchmarks. */
  completed = 0

  constructor(private readonly walPath: string) {}

  /** Resolves once everything committed before the call is on disk. */
  flush(): Promise<void> {
    if (this.queued) return this.queued
    if (!this.running) return this.start()
    this.queued = this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined
        return this.start()
      })
    return this.queued
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
  }

  private start(): Promise<void> {
    const running = new Promise<void>((resolve, reject) => {
      // Opened at the first flush, after a commit: the WAL exists from then until the last
      // connection closes, and this process holds one open.
      this.fd ??= openSync(this.walPath, 'r')
      fdatasync(this.fd, (error) => (error ? reject(error) : resolve()))
    }).then(() => {
      this.completed += 1
    })
    this.running = running.finally(() => {
      this.running = undefined
    })
    return this.running
  }
}
