import { Ajv, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifySchemaCompiler } from 'fastify'

/**
 * The one validator of request data: Fastify's route schemas compile here, and so does each item
 * of a batch, so a lead is judged the same way alone or in a batch. The options are Fastify's
 * defaults plus allErrors, so a refusal lists every problem, not the first.
 */
export const ajv = new Ajv({
  allErrors: true,
  coerceTypes: 'array',
  useDefaults: true,
  removeAdditional: true,
  strict: false,
})
addFormats.default(ajv)

const byShape = new Map<string, ValidateFunction>()
const byObject = new WeakMap<object, ValidateFunction>()

/**
 * A compiled validator for `schema`, made once for every schema of the same shape: every route is
 * registered under two prefixes, and Fastify hands some schemas over as copies (headers), so one
 * schema arrives here as several objects. Compiling each shape once halves the work of a start.
 */
export function validatorFor(schema: object): ValidateFunction {
  let validate = byObject.get(schema)
  if (!validate) {
    const shape = JSON.stringify(schema)
    validate = byShape.get(shape) ?? ajv.compile(schema)
    byShape.set(shape, validate)
    byObject.set(schema, validate)
  }
  return validate
}

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema }) =>
  validatorFor(schema as object)
