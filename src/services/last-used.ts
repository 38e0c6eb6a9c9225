import type { Db } from '../store/database.js'
import { touchIntegrations } from '../store/integrations.js'

/**
 * Coalesces `lastUsedAt` writes (api.md §1.1: "not one write per request"). A use is recorded
 * only when the stored value is older than `resolutionMs`; recorded uses are written together
 * every `flushMs` and once more on close. So a busy key costs one UPDATE per minute, not one per
 * request, and the value shown is at most a minute (plus one flush interval) behind.
 */
export class LastUsedTracker {
  private pending = new Map<string, number>()
  private known = new Map<string, number>()
  private timer: NodeJS.Timeout

  constructor(
    private readonly db: Db,
    private readonly resolutionMs = 60_000,
    flushMs = 5_000,
  ) {
    this.timer = setInterval(() => void this.flush().catch(() => {}), flushMs)
    this.timer.unref()
  }

  record(integrationId: string, storedLastUsedAt: number | null, at = Date.now()): void {
    const last = Math.max(storedLastUsedAt ?? 0, this.known.get(integrationId) ?? 0)
    if (at - last < this.resolutionMs) return
    this.known.set(integrationId, at)
    this.pending.set(integrationId, at)
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return
    const uses = this.pending
    this.pending = new Map()
    await touchIntegrations(this.db, uses)
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    await this.flush()
  }
}
