import { Type } from 'typebox'

/** Shared atoms every resource schema is built from. */
export const ObjectIdSchema = Type.String({
  pattern: '^[0-9a-f]{24}$',
  description: '24-hex ObjectId',
  examples: ['6745a1f0c2b4e5d6a7b8c9d0'],
})

export const DateTimeSchema = Type.String({
  format: 'date-time',
  description: 'ISO 8601 UTC with milliseconds',
})

export const ErrorDetailSchema = Type.Object({
  path: Type.String({ description: 'JSON pointer to the offending value, e.g. /phones/0' }),
  message: Type.String(),
  in: Type.Optional(Type.String({ description: 'body, querystring or headers' })),
})

export const ErrorSchema = Type.Object(
  {
    code: Type.String({ description: 'A code from the closed list of api.md §1.3' }),
    message: Type.String(),
    requestId: Type.String({ description: 'Also sent as the X-Request-Id header' }),
    details: Type.Optional(Type.Array(ErrorDetailSchema)),
  },
  { $id: 'Error', title: 'Error' },
)

/** Query parameter `true`/`false`. */
export const BooleanQuerySchema = Type.Union([Type.Literal('true'), Type.Literal('false')])

/** The errors every authenticated route can answer, for the OpenAPI document. */
export const authErrors = {
  401: Type.Ref('Error'),
  403: Type.Ref('Error'),
  429: Type.Ref('Error'),
}

export function iso(epochMs: number): string
export function iso(epochMs: number | null): string | null
export function iso(epochMs: number | null): string | null {
  return epochMs === null ? null : new Date(epochMs).toISOString()
}
