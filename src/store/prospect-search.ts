import { type Expression, type SqlBool, sql } from 'kysely'
import type { DataFilter, Range, Search } from '../domain/listing.js'
import { likeSubstring } from '../domain/listing.js'
import type { MatchKey } from '../domain/merge.js'
import { engineOf } from './connect.js'
import type { Executor } from './database.js'
import { ACTIVE, INACTIVE, type Prospect, prospectFromRow } from './prospects.js'

/**
 * The /prospects listing (api.md §3.2) as one query: the live prospects of the key's group
 * subtree, each filter an indexed condition, newest first, paged by id cursors.
 */
export type ProspectFilter = {
  accountId: string
  rootGroupId: string
  search?: Search
  phoneKey?: string
  category?: string
  status?: string
  agentId?: string
  groupId?: string
  withAgent?: boolean
  created?: Range
  claimed?: Range
  transferred?: Range
  data?: DataFilter[]
  before?: string
  after?: string
  limit: number
}

export async function listProspects(db: Executor, f: ProspectFilter): Promise<Prospect[]> {
  const postgres = engineOf(db) === 'postgres'
  let query = db
    .selectFrom('prospects')
    .innerJoin('groupClosure', 'groupClosure.descendantId', 'prospects.groupId')
    .selectAll('prospects')
    .where('groupClosure.ancestorId', '=', f.rootGroupId)
    .where('prospects.accountId', '=', f.accountId)
    .where('prospects.mergedInto', 'is', null)
    .where('prospects.deletedAt', 'is', null)
  // Phone and email search read every key, released ones (`active = 0`) too: both key indexes.
  const key: MatchKey | undefined = f.phoneKey
    ? { type: 'phone', value: f.phoneKey }
    : f.search && f.search.kind !== 'name'
      ? { type: f.search.kind, value: f.search.key }
      : undefined
  if (key !== undefined) {
    const holders = db
      .selectFrom('prospectKeys')
      .select('prospectId')
      .where('accountId', '=', f.accountId)
      .where('active', '=', ACTIVE)
      .where('keyType', '=', key.type)
      .where('keyValue', '=', key.value)
      .unionAll(
        db
          .selectFrom('prospectKeys')
          .select('prospectId')
          .where('accountId', '=', f.accountId)
          .where('active', '=', INACTIVE)
          .where('keyValue', '=', key.value),
      )
    query = query.where('prospects.id', 'in', holders)
  }
  if (f.search?.kind === 'name')
    query = query.where(sql<SqlBool>`prospects.search_name like ${likeSubstring(f.search.text)} escape '\\'`)
  if (f.category !== undefined) query = query.where('prospects.category', '=', f.category)
  if (f.status !== undefined) query = query.where('prospects.status', '=', f.status as Prospect['status'])
  if (f.agentId !== undefined) query = query.where('prospects.agentId', '=', f.agentId)
  if (f.groupId !== undefined) query = query.where('prospects.groupId', '=', f.groupId)
  if (f.withAgent !== undefined) query = query.where('prospects.agentId', f.withAgent ? 'is not' : 'is', null)
  for (const [column, range] of [
    ['prospects.createdAt', f.created],
    ['prospects.assignedAt', f.claimed],
    ['prospects.transferredAt', f.transferred],
  ] as const) {
    // With a key, a handful of prospects match and the dates only filter them. SQLite, which keeps
    // no statistics, would instead read the date index (a month of prospects, 20 ms at a million):
    // a unary plus takes the column out of its choices.
    const bound = key !== undefined && !postgres ? sql<number>`+${sql.ref(column)}` : sql.ref<number>(column)
    if (range?.after !== undefined) query = query.where(bound, '>=', range.after)
    if (range?.before !== undefined) query = query.where(bound, '<=', range.before)
  }
  for (const filter of f.data ?? []) query = query.where(dataCondition(filter, postgres))
  if (f.before) query = query.where('prospects.id', '<', f.before)
  if (f.after) query = query.where('prospects.id', '>', f.after)
  const rows = await query.orderBy('prospects.id', 'desc').limit(f.limit).execute()
  return rows.map(prospectFromRow)
}

const NUMBER = /^-?\d+(\.\d+)?$/

/**
 * One `additionalData[]` condition. A dotted field reads a nested value. Comparisons are numeric
 * when the value is a number (values that are not numbers never match them), else textual; `~`
 * is a substring match.
 */
function dataCondition(filter: DataFilter, postgres: boolean): Expression<SqlBool> {
  const path = filter.field.split('.')
  // The same text on both engines: PostgreSQL's #>> gives 'true'/'false' for booleans, SQLite's
  // json_extract gives 1/0, so SQLite spells booleans out.
  const jsonPath = `$.${path.map((p) => `"${p}"`).join('.')}`
  const value = postgres
    ? sql`(prospects.additional_data::jsonb #>> ${`{${path.join(',')}}`})`
    : sql`(case json_type(prospects.additional_data, ${jsonPath}) when 'true' then 'true' when 'false' then 'false' else json_extract(prospects.additional_data, ${jsonPath}) end)`
  if (filter.op === '~')
    return sql<SqlBool>`lower(cast(${value} as text)) like ${likeSubstring(filter.value.toLowerCase())} escape '\\'`
  const op = sql.raw(filter.op)
  if (NUMBER.test(filter.value)) {
    const number = postgres
      ? sql`(case when ${value} ~ '^-?[0-9]+([.][0-9]+)?$' then (${value})::numeric end)`
      : sql`(case when typeof(${value}) in ('integer', 'real') then ${value} when typeof(${value}) = 'text' and ${value} glob '*[0-9]*' and ${value} not glob '*[^0-9.-]*' then cast(${value} as real) end)`
    return sql<SqlBool>`${number} ${op} ${Number(filter.value)}`
  }
  return sql<SqlBool>`cast(${value} as text) ${op} ${filter.value}`
}
