import fastJson, { type Options } from 'fast-json-stringify'
import { builtBeside } from './built.js'

type Serialize = (data: unknown) => string

/** What a serializer is built from: a response schema, the schemas it may refer to, and options. */
export type SerializerSource = { schema: object; options: Options }

/** The serializers the build compiled, by `keyOf`: building them was a tenth of a start (BENCHMARKS.md §8). */
const precompiled = builtBeside<Serialize>(new URL('./serializers.cjs', import.meta.url))
const seen = new Map<string, SerializerSource>()

/**
 * Fastify's own response serializer (fast-json-stringify, given the schemas added with
 * `addSchema`), built once per schema shape rather than once per route: every route is registered
 * under two prefixes, and building serializers was a fifth of a start.
 */
export function buildSerializer(
  external: unknown = {},
  options: Options = {},
): (route: { schema?: unknown }) => Serialize {
  const byShape = new Map<string, Serialize>()
  return ({ schema }) => {
    const shape = JSON.stringify(schema)
    let serialize = byShape.get(shape)
    if (!serialize) {
      // A response schema that is itself an added one must not be given twice (as Fastify's does).
      const { $id } = schema as { $id?: string }
      const schemas = Object.fromEntries(
        Object.entries(external as Record<string, unknown>).filter(([id]) => id !== $id),
      )
      const source = {
        schema: schema as object,
        options: { ...options, schema: schemas as Options['schema'] },
      }
      const key = keyOf(source)
      seen.set(key, source)
      serialize = precompiled(key) ?? (fastJson(source.schema, source.options) as Serialize)
      byShape.set(shape, serialize)
    }
    return serialize
  }
}

/** A serializer's key: its schema, the schemas it may refer to and its options, as JSON. */
function keyOf({ schema, options }: SerializerSource): string {
  return JSON.stringify([schema, options])
}

/** The serializers built so far, by key: what the build compiles ahead of time. */
export function serializersSeen(): Map<string, SerializerSource> {
  return seen
}
