import type { Result } from '../domain/result.js'

/**
 * The one error contract (api.md §1.3): a closed list of codes, each with its status. Handlers
 * throw ApiError; the error handler (plugins/errors.ts) turns it and every framework error into
 * `{code, message, requestId, details?}`.
 */
export const ERROR_STATUS = {
  SCHEMA_VALIDATION_FAILED: 400,
  INVALID_ID: 400,
  INVALID_DATE_RANGE: 400,
  MALFORMED_JSON: 400,
  UNAUTHORIZED: 401,
  INVALID_SCOPE: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  IDEMPOTENCY_KEY_REUSED: 409,
  NO_USER_CONFIGURED: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE_LEAD: 422,
  RATE_LIMITED: 429,
  UNEXPECTED_ERROR: 500,
  UNAVAILABLE: 503,
} as const

export type ErrorCode = keyof typeof ERROR_STATUS

export type ErrorDetail = { path: string; message: string; in?: string }

export class ApiError extends Error {
  readonly statusCode: number

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
  ) {
    super(message)
    this.statusCode = ERROR_STATUS[code]
  }
}

type ValidationIssue = { instancePath: string; message?: string; params?: Record<string, unknown> }

/** `/phones/0` for an item, `/utmSource` for a missing property: where the caller must look. */
function pathOf(issue: ValidationIssue): string {
  const missing = issue.params?.missingProperty
  return missing ? `${issue.instancePath}/${String(missing)}` : issue.instancePath || '/'
}

/** Ajv's issues as the contract's details, one per problem with its field path. */
export function validationDetails(issues: readonly ValidationIssue[], where: string): ErrorDetail[] {
  return issues.map((issue) => ({ path: pathOf(issue), message: issue.message ?? 'is invalid', in: where }))
}

export function schemaError(details: ErrorDetail[], where = 'body'): ApiError {
  const summary = details.map((d) => `${d.path} ${d.message}`).join('; ')
  return new ApiError('SCHEMA_VALIDATION_FAILED', `Invalid ${where}: ${summary}`, details)
}

export const notFound = (what: string) => new ApiError('NOT_FOUND', `${what} not found`)

/** A service's expected failure as the contract's error; its value otherwise. */
export function orThrow<T>(result: Result<T>): T {
  if (result.ok) return result.value
  const details = result.path ? [{ path: result.path, message: result.message, in: 'body' }] : undefined
  if (result.code === 'NOT_FOUND') throw new ApiError('NOT_FOUND', result.message)
  if (result.code === 'CONFLICT') throw new ApiError('CONFLICT', result.message, details)
  throw new ApiError(
    'SCHEMA_VALIDATION_FAILED',
    `Invalid body: ${result.path ?? ''} ${result.message}`.trim(),
    details,
  )
}
