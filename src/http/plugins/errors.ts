import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ApiError, schemaError, validationDetails } from '../errors.js'

/** Maps framework errors onto the contract's codes; anything unknown is a bug (500). */
export function toApiError(error: FastifyError): ApiError {
  if (error instanceof ApiError) return error
  if (error.validation) {
    const where = error.validationContext ?? 'body'
    const details = validationDetails(error.validation, where)
    if (where === 'params') return new ApiError('INVALID_ID', `Invalid ${details[0]?.path.slice(1)}`)
    return schemaError(details, where)
  }
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('MALFORMED_JSON', 'The body is not valid JSON')
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('PAYLOAD_TOO_LARGE', 'The body is larger than this route accepts')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json')
  }
  if (error instanceof SyntaxError && error.statusCode === 400)
    return new ApiError('MALFORMED_JSON', 'The body is not valid JSON')
  if (isStorageOutage(error)) return new ApiError('UNAVAILABLE', 'Storage is unavailable; retry later')
  return new ApiError('UNEXPECTED_ERROR', 'Unexpected error')
}

/**
 * Errors that mean the database is down or saturated rather than that the request or the code is
 * wrong: refused or broken connections, SQLite busy or out of space, and PostgreSQL's connection
 * failures (08000-08006, not 08P01, a protocol violation), insufficient resources (53xxx) and
 * shutdowns (57P01-57P03). Only these answer 503 with Retry-After.
 */
const OUTAGE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'SQLITE_BUSY',
  'SQLITE_FULL',
  'SQLITE_IOERR',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '57P01',
  '57P02',
  '57P03',
])

function isStorageOutage(error: Error & { code?: string }): boolean {
  const code = error.code ?? ''
  return OUTAGE_CODES.has(code) || code.startsWith('53')
}

async function errorsPlugin(app: FastifyInstance) {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const apiError = toApiError(error)
    if (apiError.statusCode >= 500) request.log.error({ err: error }, 'request failed')
    if (apiError.code === 'UNAVAILABLE') reply.header('retry-after', '5')
    return reply.status(apiError.statusCode).send({
      code: apiError.code,
      message: apiError.message,
      requestId: request.id,
      ...(apiError.details ? { details: apiError.details } : {}),
    })
  })

  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({
      code: 'NOT_FOUND',
      message: `No route ${request.method} ${request.url.split('?')[0]}`,
      requestId: request.id,
    }),
  )
}

export default fp(errorsPlugin, { name: 'errors' })
