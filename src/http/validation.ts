import { Ajv, type Options, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifySchemaCompiler } from 'fastify'
import { builtBeside } from './built.js'

/**
 * The one validator of request data: Fastify's route schemas compile here, and so does each item
 * of a batch, so a lead is judged the same way alone or in a batch. The options are Fastify's
 * defaults plus allErrors, so a refusal lists every problem, not the first.
 */
const AJV_OPTIONS: Options = {
  allErrors: true,
  coerceTypes: 'array',
  useDefaults: true,
  removeAdditional: true,
  strict: false,
}

/** An Ajv with our options and formats; `options` adds to them (the build's asks for source code). */
export function createAjv(options: Options = {}): Ajv {
  const ajv = new Ajv({ ...AJV_OPTIONS, ...options })
  addFormats.default(ajv)
  return ajv
}

const ajv = createAjv()

/** The validators the build compiled, by shape: compiling them was a fifth of a start (BENCHMARKS.md §8). */
const built = builtBeside<ValidateFunction>(new URL('./validators.cjs', import.meta.url))

/**
 * Fastify hands a validator the request part's parent, which lets Ajv coerce a part as a whole,
 * only when it carries Ajv's `schemaEnv`; standalone code has none, so each gets a marker.
 */
function precompiled(shape: string): ValidateFunction | undefined {
  const validate = built(shape)
  return validate && Object.assign(validate, { schemaEnv: { standalone: true } })
}

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
    validate = byShape.get(shape) ?? precompiled(shape) ?? ajv.compile(schema)
    byShape.set(shape, validate)
    byObject.set(schema, validate)
  }
  return validate
}

/** The shapes validated so far, as JSON: what the build compiles ahead of time. */
export function shapesSeen(): string[] {
  return [...byShape.keys()]
}

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema }) =>
  validatorFor(schema as object)
