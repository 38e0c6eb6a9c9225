import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'

/**
 * List formats (api.md §1.4): JSON by default, CSV with `format=csv` or `Accept: text/csv`.
 * CSV is streamed page by page, never built whole in memory. Its columns come from the route's
 * own item schema (one schema, many uses): nested objects become dotted columns
 * (`agent.firstName`), arrays are joined with `|` (objects in them as JSON), free-form maps
 * (`additionalData`, `output`) are one JSON column.
 */
export const FormatQuery = {
  format: Type.Optional(Type.Enum(['json', 'csv'], { description: 'or send Accept: text/csv' })),
}

export function wantsCsv(request: FastifyRequest): boolean {
  const format = (request.query as { format?: string }).format
  if (format) return format === 'csv'
  const accept = request.headers.accept ?? ''
  return /\btext\/csv\b/.test(accept) && !/\bapplication\/json\b/.test(accept.split('text/csv')[0] ?? '')
}

type Schema = { type?: unknown; properties?: Record<string, unknown> }

/** Dotted column names of an object schema, in declaration order. */
export function columnsOf(schema: Schema, prefix = ''): string[] {
  return Object.entries(schema.properties ?? {}).flatMap(([name, value]) => {
    const child = value as Schema
    return child.type === 'object' && child.properties && Object.keys(child.properties).length > 0
      ? columnsOf(child, `${prefix}${name}.`)
      : [`${prefix}${name}`]
  })
}

function cell(value: unknown): string {
  if (value === undefined || value === null) return ''
  const text = Array.isArray(value)
    ? value.map((v) => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v))).join('|')
    : typeof value === 'object'
      ? JSON.stringify(value)
      : String(value)
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

function pick(item: unknown, column: string): unknown {
  return column
    .split('.')
    .reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], item)
}

/** Sends pages of items as a JSON array (collected: pages are bounded by `limit`) or a CSV stream. */
export async function sendList<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  itemSchema: Schema,
  pages: AsyncIterable<T[]>,
): Promise<unknown> {
  if (!wantsCsv(request)) {
    const items: T[] = []
    for await (const page of pages) items.push(...page)
    return items
  }
  const columns = columnsOf(itemSchema)
  async function* lines() {
    yield `${columns.join(',')}\r\n`
    for await (const page of pages) {
      yield page.map((item) => `${columns.map((c) => cell(pick(item, c))).join(',')}\r\n`).join('')
    }
  }
  return reply.type('text/csv; charset=utf-8').send(Readable.from(lines()))
}
