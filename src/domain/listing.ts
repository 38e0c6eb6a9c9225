import { parseEmail } from './email.js'
import { foldName } from './names.js'
import { parsePhone } from './phone.js'

/**
 * Listing rules shared by /prospects and /prospects/interactions (api.md §3.2), pure.
 */
export const DAY_MS = 24 * 60 * 60 * 1000
export const WINDOW_MS = 31 * DAY_MS

export type Range = { after?: number; before?: number }
export type RangeCheck = { ok: true; range: Range } | { ok: false; message: string }

/**
 * The original's 31-day rule for one date family (created, claimed, transferred). With `limit`
 * given the window does not apply (cursors page through everything); `after` past `before` is
 * refused all the same, because it can only be a mistake.
 */
export function checkRange(name: string, range: Range, limited: boolean, now: number): RangeCheck {
  const { after, before } = range
  if (after !== undefined && before !== undefined && after > before) {
    return { ok: false, message: `${name}: the start (${iso(after)}) is after the end (${iso(before)})` }
  }
  if (limited) return { ok: true, range }
  if (after !== undefined && before !== undefined) {
    if (before - after > WINDOW_MS)
      return { ok: false, message: `${name}: a range may span at most 31 days without a limit` }
    return { ok: true, range }
  }
  const single = after ?? before
  if (single !== undefined && now - single > WINDOW_MS) {
    return { ok: false, message: `${name}: a single date may be at most 31 days old without a limit` }
  }
  return { ok: true, range }
}

const iso = (t: number) => new Date(t).toISOString()

export type DataFilter = { field: string; op: '=' | '>=' | '>' | '<=' | '<' | '~'; value: string }

const DATA_FILTER = /^\s*([A-Za-z0-9_.-]+)\s*(>=|<=|=|>|<|~)\s*(.*?)\s*$/

/** `FIELD OP VALUE` (OP one of = >= > <= < ~); the field is a plain name so it can go into a JSON path. */
export function parseDataFilter(text: string): DataFilter | null {
  const match = DATA_FILTER.exec(text)
  if (!match) return null
  return { field: match[1] as string, op: match[2] as DataFilter['op'], value: match[3] as string }
}

export type Search = { kind: 'phone' | 'email'; key: string } | { kind: 'name'; text: string }

/**
 * What a `search` term is: an email when it has an @ and parses as one, a phone when it has at
 * least six digits and parses as a possible number (under the group's country), else a name
 * (case- and accent-insensitive substring).
 */
export function classifySearch(term: string, country: string): Search {
  if (term.includes('@')) {
    const email = parseEmail(term)
    if (email.key) return { kind: 'email', key: email.key }
  }
  if ((term.match(/\d/g) ?? []).length >= 6) {
    const phone = parsePhone(term, country)
    if (phone.key) return { kind: 'phone', key: phone.key }
  }
  return { kind: 'name', text: foldName(term) }
}

/** LIKE pattern for a substring, with the pattern characters escaped (ESCAPE '\\'). */
export function likeSubstring(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
}
