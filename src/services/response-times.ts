import { sql } from 'kysely'
import { DAY_MS } from '../domain/listing.js'
import type { Executor } from '../store/database.js'

/**
 * Response time (api.md §5): for each prospect assigned in the last 30 days, the time from its
 * assignment to the first interaction its agent performed; the mean of those, in seconds, and how
 * many prospects had one. Computed by the database in one aggregate query, never by loading rows.
 * Prospects their agent has not yet answered are not samples (their time is not known yet).
 */
export async function responseTime(
  db: Executor,
  accountId: string,
  scope: { agentId: string } | { rootGroupId: string },
  now: number,
): Promise<{ averageSeconds: number | null; samples: number }> {
  let firsts = db
    .selectFrom('prospects')
    .innerJoin('interactions', (join) =>
      join
        .onRef('interactions.prospectId', '=', 'prospects.id')
        .onRef('interactions.agentId', '=', 'prospects.agentId')
        .onRef('interactions.createdAt', '>=', 'prospects.assignedAt'),
    )
    .select([
      'prospects.id',
      'prospects.assignedAt',
      (eb) => eb.fn.min('interactions.createdAt').as('firstAt'),
    ])
    .where('prospects.accountId', '=', accountId)
    .where('prospects.assignedAt', '>=', now - 30 * DAY_MS)
    .where('prospects.mergedInto', 'is', null)
    .where('prospects.deletedAt', 'is', null)
  firsts =
    'agentId' in scope
      ? firsts.where('prospects.agentId', '=', scope.agentId)
      : firsts.where(
          'prospects.groupId',
          'in',
          db.selectFrom('groupClosure').select('descendantId').where('ancestorId', '=', scope.rootGroupId),
        )
  const row = await db
    .selectFrom(firsts.groupBy(['prospects.id', 'prospects.assignedAt']).as('f'))
    .select([
      sql<number | string | null>`avg(${sql.ref('f.firstAt')} - ${sql.ref('f.assignedAt')})`.as('averageMs'),
      (eb) => eb.fn.countAll<number>().as('samples'),
    ])
    .executeTakeFirstOrThrow()
  const samples = Number(row.samples)
  return {
    averageSeconds: samples === 0 || row.averageMs === null ? null : Math.round(Number(row.averageMs)) / 1000,
    samples,
  }
}
