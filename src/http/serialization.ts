import fastJson, { type Options } from 'fast-json-stringify'

type Serialize = (data: unknown) => string

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
      serialize = fastJson(schema as object, {
        ...options,
        schema: schemas as Options['schema'],
      }) as Serialize
      byShape.set(shape, serialize)
    }
    return serialize
  }
}
