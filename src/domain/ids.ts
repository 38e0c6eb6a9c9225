import { randomBytes } from 'node:crypto'

/**
 * 24-hex ObjectIds, as MongoDB makes them: 4 bytes of Unix seconds, 5 random bytes chosen once
 * per process, and a 3-byte counter. Ids made later sort after ids made earlier (to the second
 * across processes, exactly within one process), which is what the API's `before`/`after`
 * cursors rely on.
 */
const processUnique = randomBytes(5).toString('hex')
let counter = randomBytes(3).readUIntBE(0, 3)

export function newId(now: number = Date.now()): string {
  counter = (counter + 1) % 0xffffff
  const seconds = Math.floor(now / 1000)
  return seconds.toString(16).padStart(8, '0') + processUnique + counter.toString(16).padStart(6, '0')
}

const OBJECT_ID = /^[0-9a-f]{24}$/

export function isObjectId(value: string): boolean {
  return OBJECT_ID.test(value)
}

/** The smallest id that could have been made at `time`: turns a date into an id cursor. */
export function idAt(time: number): string {
  return (
    Math.floor(time / 1000)
      .toString(16)
      .padStart(8, '0') + '0'.repeat(16)
  )
}
