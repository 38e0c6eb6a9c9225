import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { sql } from 'kysely'
import { Type } from 'typebox'
import { pendingMigrations } from '../../store/migrator.js'

const StatusSchema = Type.Object({
  status: Type.String(),
  problems: Type.Optional(Type.Array(Type.String())),
})

/** Liveness and readiness, at the root, without a key (operations.md §8). */
const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/health',
    { schema: { summary: 'The process is up', tags: ['Operations'], response: { 200: StatusSchema } } },
    async () => ({
      status: 'ok',
    }),
  )

  app.get(
    '/ready',
    {
      schema: {
        summary: 'The database answers and its schema is current',
        tags: ['Operations'],
        response: { 200: StatusSchema, 503: StatusSchema },
      },
    },
    async (_request, reply) => {
      const problems: string[] = []
      try {
        await sql`select 1`.execute(app.db)
        const pending = await pendingMigrations(app.db)
        if (pending.length > 0) problems.push(`pending migrations: ${pending.join(', ')}`)
      } catch (error) {
        // Unauthenticated route: the detail goes to the log, not to whoever asks.
        app.log.error({ err: error }, 'readiness check failed')
        problems.push('database unreachable')
      }
      if (problems.length > 0) return reply.status(503).send({ status: 'unavailable', problems })
      return { status: 'ready' }
    },
  )
}

export default routes
