import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { checkRange, DAY_MS, type Range, WINDOW_MS } from '../domain/listing.js'
import { ApiError } from './errors.js'
import { FormatQuery, sendList } from './formats.js'
import { ObjectIdSchema } from './schemas/common.js'

/**
 * Query parts every list shares (api.md §3.2): the date families with their deprecated aliases,
 * the page size and the id cursors, and the 31-day rule applied to them in one place.
 */
const dateParam = (description: string) =>
  Type.Optional(Type.String({ description: `ISO 8601 date or date-time; ${description}` }))

export const DATE_FAMILIES = {
  created: { after: ['createdAfter', 'start'], before: ['createdBefore', 'end'] },
  claimed: { after: ['claimedAfter', 'claimStart'], before: ['claimedBefore', 'claimEnd'] },
  transferred: { after: ['transferredAfter', 'transferStart'], before: ['transferredBefore', 'transferEnd'] },
} as const

export type DateFamily = keyof typeof DATE_FAMILIES

export function dateQuery<F extends DateFamily>(families: readonly F[]) {
  const params: Record<string, ReturnType<typeof dateParam>> = {}
  for (const family of families) {
    const { after, before } = DATE_FAMILIES[family]
    params[after[0]] = dateParam('inclusive start')
    params[after[1]] = dateParam(`deprecated alias of ${after[0]}`)
    params[before[0]] = dateParam('inclusive end')
    params[before[1]] = dateParam(`deprecated alias of ${before[0]}`)
  }
  return params
}

export const PageQuery = {
  limit: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 5000,
      description: 'page size (default 100); with it the 31-day rule does not apply',
    }),
  ),
  before: Type.Optional(ObjectIdSchema),
  after: Type.Optional(ObjectIdSchema),
  ...FormatQuery,
}

const ISO_8601 = /^(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})?)?$/

/**
 * A query date: ISO 8601, a date or a date-time (no offset means UTC). A date without a time is a
 * whole day: as a start it begins at 00:00 UTC, as an end it runs to 23:59:59.999 UTC, so
 * `createdBefore=2026-01-31` includes the 31st. Anything else is refused by name: JavaScript's
 * Date.parse would quietly read `12` as 2001-12-01 and `2026-02-30` as 2 March.
 */
function parseDate(name: string, text: string | undefined, end: boolean): number | undefined {
  if (text === undefined) return undefined
  const match = ISO_8601.exec(text.trim())
  const day = match?.[1]
  const dateOnly = match !== null && match[2] === undefined
  const time = match ? Date.parse(match[5] || !match[2] ? text.trim() : `${text.trim()}Z`) : Number.NaN
  if (!day || Number.isNaN(time) || new Date(Date.parse(day)).toISOString().slice(0, 10) !== day) {
    throw new ApiError('SCHEMA_VALIDATION_FAILED', `Invalid querystring: /${name} is not an ISO 8601 date`, [
      {
        path: `/${name}`,
        message: 'must be an ISO 8601 date (2026-11-24) or date-time (2026-11-24T13:00:00Z)',
        in: 'querystring',
      },
    ])
  }
  return end && dateOnly ? time + DAY_MS - 1 : time
}

/**
 * The date ranges of a list request, checked by the 31-day rule (domain/listing.ts). With no
 * limit and no date at all, the window is the last 31 days of `windowFamily`.
 */
export function dateRanges<F extends DateFamily>(
  query: Record<string, unknown>,
  families: readonly F[],
  /** The family the 31-day window applies to by default; null for lists without the rule. */
  windowFamily: F | null,
  now: number,
): Partial<Record<F, Range>> {
  const limited = windowFamily === null || query.limit !== undefined
  const ranges: Partial<Record<F, Range>> = {}
  for (const family of families) {
    const { after, before } = DATE_FAMILIES[family]
    const afterName = query[after[0]] !== undefined ? after[0] : after[1]
    const beforeName = query[before[0]] !== undefined ? before[0] : before[1]
    const range = {
      after: parseDate(afterName, query[afterName] as string | undefined, false),
      before: parseDate(beforeName, query[beforeName] as string | undefined, true),
    }
    if (range.after === undefined && range.before === undefined) continue
    const checked = checkRange(family, range, limited, now)
    if (!checked.ok) throw new ApiError('INVALID_DATE_RANGE', checked.message)
    // Without a limit a lone end date still gets a 31-day window, ending there.
    if (!limited && range.after === undefined && range.before !== undefined)
      range.after = range.before - WINDOW_MS
    ranges[family] = checked.range
  }
  if (!limited && windowFamily && Object.keys(ranges).length === 0)
    ranges[windowFamily] = { after: now - WINDOW_MS }
  return ranges
}

/** A paged list in the requested format, with `Link: rel="next"` when a JSON page came back full. */
export async function sendPages<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  itemSchema: object,
  pages: AsyncIterable<T[]>,
  limit: number,
) {
  const items = await sendList(request, reply, itemSchema, pages)
  linkNext(request, reply, items, limit)
  return items
}

/** `Link: <…?before=last>; rel="next"` when a page came back full (ext). */
function linkNext(request: FastifyRequest, reply: FastifyReply, items: unknown, limit: number): void {
  if (!Array.isArray(items) || items.length < limit) return
  const last = (items.at(-1) as { id: string }).id
  const url = new URL(request.url, 'http://ventas.invalid')
  url.searchParams.set('before', last)
  // The key stays out of the header (it travels as the caller chooses); `after` still bounds the next page.
  url.searchParams.delete('api-key')
  reply.header('link', `<${url.pathname}${url.search}>; rel="next"`)
}

/**
 * Pages of at most `size` items from a cursor-driven fetch, until `limit` items or the end. The
 * cursor is the last id of the previous page; `fetch` decides its direction (before or after).
 */
export async function* paginate<T extends { id: string }, V>(
  fetch: (cursor: string | undefined, size: number) => Promise<T[]>,
  view: (items: T[]) => Promise<V[]>,
  limit: number,
  start?: string,
  size = 500,
): AsyncGenerator<V[]> {
  let cursor = start
  for (let remaining = limit; remaining > 0; ) {
    const page = await fetch(cursor, Math.min(size, remaining))
    if (page.length === 0) return
    yield await view(page)
    remaining -= page.length
    if (page.length < Math.min(size, remaining + page.length)) return
    cursor = (page.at(-1) as T).id
  }
}
