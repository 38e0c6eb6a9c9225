/**
 * An idle worker woken by a commit less than this after its last wake waits out the rest, so the
 * leads of the requests arriving meanwhile share its transaction: at 500 single leads a second,
 * woken by every commit it made a flushed commit per lead, a fifth of `ventas serve`'s time. The
 * first commit after a quiet spell wakes it at once; a busy worker never waits.
 */
export const GATHER_MS = 10

/**
 * The sleep of a worker loop between passes that found all there was, and what ends it. A wake that
 * comes while the loop is busy is kept: its pass may have looked before the commit that woke it,
 * so the next sleep ends at once.
 */
export class Idle {
  private wake: (() => void) | undefined
  private woken = false
  private gathering: NodeJS.Timeout | undefined
  private lastGathered = 0

  constructor(private readonly gatherMs = GATHER_MS) {}

  /** Sleeps `ms`, or until woken; returns at once after a wake that came while busy. */
  sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.wake = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.wake = done
    })
  }

  /** New work was committed: wakes a sleeping loop once the commits of a moment have gathered. */
  nudge(): void {
    if (!this.wake) {
      this.woken = true
      return
    }
    this.gathering ??= setTimeout(
      () => {
        this.gathering = undefined
        this.lastGathered = Date.now()
        this.rouse()
      },
      Math.max(0, this.lastGathered + this.gatherMs - Date.now()),
    )
  }

  /** Ends the sleep now, or, when the loop is busy, makes it skip the next one. */
  rouse(): void {
    if (this.wake) this.wake()
    else this.woken = true
  }

  /** Drops a pending gather and ends the sleep, for a loop that is stopping. */
  stop(): void {
    clearTimeout(this.gathering)
    this.gathering = undefined
    this.rouse()
  }
}
