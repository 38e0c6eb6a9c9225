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

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema }) => ajv.compile(schema as object)

const compiled = new WeakMap<object, ValidateFunction>()

/** A compiled validator for `schema`, made once. */
export function validatorFor(schema: object): ValidateFunction {
  let validate = compiled.get(schema)
  if (!validate) {
    validate = ajv.compile(schema)
    compiled.set(schema, validate)
  }
  return validate
}
