import { type Selectable, sql } from 'kysely'
import type { Contact, KeyType, MatchKey } from '../domain/merge.js'
import { foldName } from '../domain/names.js'
import { engineOf } from './connect.js'
import { chunks, type Executor, insertRows, type ProspectsTable, reusable } from './database.js'

export type Prospect = Omit<
  Selectable<ProspectsTable>,
  'details' | 'phones' | 'emails' | 'additionalData' | 'userMade' | 'searchName'
> & {
  details: Record<string, unknown>
  phones: Contact[]
  emails: Contact[]
  additionalData: Record<string, unknown>
  userMade: boolean
}

/**
 * A prospect as read. Every field is named, not spread from the row: leaving `search_name` out
 * with a rest pattern took V8's slow copy, 8–10 µs a row against 1.5–2 (BENCHMARKS.md §7),
 * and every list, lookup, merge and webhook reads prospects.
 */
export function prospectFromRow(row: Selectable<ProspectsTable>): Prospect {
  return {
    id: row.id,
    accountId: row.accountId,
    groupId: row.groupId,
    initialGroupId: row.initialGroupId,
    firstName: row.firstName,
    lastName: row.lastName,
    status: row.status,
    category: row.category,
    label: row.label,
    details: JSON.parse(row.details),
    phones: JSON.parse(row.phones),
    emails: JSON.parse(row.emails),
    additionalData: JSON.parse(row.additionalData),
    agentId: row.agentId,
    assignedAt: row.assignedAt,
    transferredAt: row.transferredAt,
    absenceMessage: row.absenceMessage,
    archivingReason: row.archivingReason,
    userMade: row.userMade === 1,
    previousProspectId: row.previousProspectId,
    mergedInto: row.mergedInto,
    sequence: row.sequence,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    deletedAt: row.deletedAt,
  }
}

/** The row of a prospect; `search_name` is derived here, so it always follows the names. */
export function prospectRow(prospect: Prospect) {
  return {
    ...prospect,
    searchName: foldName(`${prospect.firstName} ${prospect.lastName}`),
    details: JSON.stringify(prospect.details),
    phones: JSON.stringify(prospect.phones),
    emails: JSON.stringify(prospect.emails),
    additionalData: JSON.stringify(prospect.additionalData),
    userMade: prospect.userMade ? 1 : 0,
  }
}

export type ProspectRow = ReturnType<typeof prospectRow>

/**
 * Writes prospects. One given with the row it was read as (`stored`) sets only the columns that
 * differ from it: SQLite rewrites the entries of every index on a column an update sets, changed
 * or not, and setting them all cost about eight index pages per merged lead. One given without is
 * inserted. Rows that set the same columns share a statement (an upsert on the id).
 */
export async function saveProspects(
  db: Executor,
  prospects: { prospect: Prospect; stored?: ProspectRow }[],
): Promise<void> {
  const bySet = new Map<string, { columns: Updatable[]; rows: ProspectRow[] }>()
  for (const { prospect, stored } of prospects) {
    const row = prospectRow(prospect)
    const columns = stored ? UPDATABLE.filter((c) => row[c] !== stored[c]) : []
    if (stored && columns.length === 0) continue
    const set = bySet.get(columns.join()) ?? { columns, rows: [] }
    bySet.set(columns.join(), set)
    set.rows.push(row)
  }
  for (const { columns, rows } of bySet.values())
    await insertRows(db, 'prospects', rows, columns.length > 0 ? { on: ['id'], update: columns } : undefined)
}

/** Every column a change may set: all but the id, the account and the creation time. */
const UPDATABLE = [
  'groupId',
  'initialGroupId',
  'firstName',
  'lastName',
  'status',
  'category',
  'label',
  'details',
  'phones',
  'emails',
  'additionalData',
  'agentId',
  'assignedAt',
  'transferredAt',
  'absenceMessage',
  'archivingReason',
  'userMade',
  'previousProspectId',
  'mergedInto',
  'sequence',
  'updatedAt',
  'deletedAt',
  'searchName',
] as const satisfies readonly (keyof ProspectRow)[]

type Updatable = (typeof UPDATABLE)[number]

export async function findProspect(
  db: Executor,
  accountId: string,
  id: string,
): Promise<Prospect | undefined> {
  const [row] = (await prospectById(db, { accountId, id })).rows
  return row && prospectFromRow(row)
}

/** Every read of one prospect (and every v1 answer) runs it: compiled once. */
const prospectById = reusable((db, v: { accountId: string; id: string }) =>
  db.selectFrom('prospects').selectAll().where('accountId', '=', v.accountId).where('id', '=', v.id),
)

/**
 * The key values alone, for `key_value IN (…)`: it lets both engines seek the index for each key.
 * Given only the OR of (type, value) pairs, SQLite's planner walks every key of the account
 * instead, a cost that grows with the number of prospects.
 */
function keyValues(keys: MatchKey[]): string[] {
  return [...new Set(keys.map((k) => k.value))]
}

/**
 * `active = 1` and `active = 0` are literals in the SQL, not bound values: a partial index
 * (`prospect_keys_active`, `prospect_keys_inactive`) serves a query only when the planner sees
 * that the query's terms imply the index's WHERE, and a literal shows it to both engines whenever
 * they plan, whatever they do with bound values.
 */
export const ACTIVE = sql.lit(1)
export const INACTIVE = sql.lit(0)

/** The rows whose (type, value) is one of `keys`: the queries select on values (and at most one type). */
function ofKeys<T extends { keyType: KeyType; keyValue: string; prospectId: string }>(
  rows: T[],
  keys: MatchKey[],
): (MatchKey & { prospectId: string })[] {
  const wanted = new Set(keys.map((k) => `${k.type}:${k.value}`))
  return rows
    .filter((r) => wanted.has(`${r.keyType}:${r.keyValue}`))
    .map((r) => ({ prospectId: r.prospectId, type: r.keyType, value: r.keyValue }))
}

/** The active keys among `keys`, with the prospect holding each (from the active-key index). */
export async function findKeyHolders(
  db: Executor,
  accountId: string,
  keys: MatchKey[],
): Promise<(MatchKey & { prospectId: string })[]> {
  const holders: (MatchKey & { prospectId: string })[] = []
  for (const type of new Set(keys.map((k) => k.type))) {
    for (const values of chunks(keyValues(keys.filter((k) => k.type === type)))) {
      holders.push(...ofKeys((await activeHolders(db, { accountId, type, values })).rows, keys))
    }
  }
  return holders
}

const activeHolders = reusable((db, v: { accountId: string; type: KeyType; values: string[] }) =>
  db
    .selectFrom('prospectKeys')
    .select(['prospectId', 'keyType', 'keyValue'])
    .where('accountId', '=', v.accountId)
    .where('active', '=', ACTIVE)
    .where('keyType', '=', v.type)
    .where('keyValue', 'in', v.values),
)

/**
 * Loads prospects for change. On PostgreSQL the rows are locked (in id order, so two workers
 * never lock the same pair in opposite orders) and a row merged away meanwhile drops out of the
 * result; SQLite already runs one writer at a time.
 */
export async function lockProspects(db: Executor, accountId: string, ids: string[]): Promise<Prospect[]> {
  if (ids.length === 0) return []
  return (await prospectsLocked(db, { accountId, ids })).rows.map(prospectFromRow)
}

const prospectsLocked = reusable((db, v: { accountId: string; ids: string[] }) => {
  const query = db
    .selectFrom('prospects')
    .selectAll()
    .where('accountId', '=', v.accountId)
    .where('id', 'in', v.ids)
    .where('mergedInto', 'is', null)
    .orderBy('id')
  return engineOf(db) === 'postgres' ? query.forUpdate() : query
})

/**
 * The archived (not deleted) prospects that held any of `keys`, with the key each held: a
 * returning person's history, the most recent being the greatest id.
 */
export async function findPreviousHolders(
  db: Executor,
  accountId: string,
  keys: MatchKey[],
): Promise<(MatchKey & { prospectId: string })[]> {
  const holders: (MatchKey & { prospectId: string })[] = []
  for (const values of chunks(keyValues(keys))) {
    holders.push(...ofKeys((await previousHolders(db, { accountId, values })).rows, keys))
  }
  return holders
}

const previousHolders = reusable((db, v: { accountId: string; values: string[] }) =>
  db
    .selectFrom('prospectKeys')
    .innerJoin('prospects', 'prospects.id', 'prospectKeys.prospectId')
    .select(['prospectKeys.prospectId', 'prospectKeys.keyType', 'prospectKeys.keyValue'])
    .where('prospectKeys.accountId', '=', v.accountId)
    .where('prospectKeys.active', '=', INACTIVE)
    .where('prospectKeys.keyValue', 'in', v.values)
    .where('prospects.deletedAt', 'is', null),
)

export type KeyRow = { accountId: string; keyType: KeyType; keyValue: string; prospectId: string }

/**
 * Links keys to prospects in the order given: callers sort them, so two PostgreSQL writers meet
 * on the same key first instead of each holding one the other wants. Throws a unique violation
 * when another active prospect holds one.
 */
export async function insertKeys(db: Executor, keys: KeyRow[]): Promise<void> {
  await insertRows(
    db,
    'prospectKeys',
    keys.map((k) => ({ ...k, active: 1 })),
  )
}

/** Moves every active key of `fromId` to `toId` except those listed in `drop`, which are removed. */
export async function moveKeys(db: Executor, fromId: string, toId: string, drop: string[]): Promise<void> {
  if (drop.length > 0) {
    await db
      .deleteFrom('prospectKeys')
      .where('prospectId', '=', fromId)
      .where('keyValue', 'in', drop)
      .execute()
  }
  await db
    .updateTable('prospectKeys')
    .set({ prospectId: toId })
    .where('prospectId', '=', fromId)
    .where('active', '=', 1)
    .execute()
}

/** Open prospects per agent, for leastLoaded routing. */
export async function countOpenProspects(db: Executor, agentIds: string[]): Promise<Map<string, number>> {
  const loads = new Map(agentIds.map((id) => [id, 0]))
  if (agentIds.length === 0) return loads
  const rows = await db
    .selectFrom('prospects')
    .select(['agentId', (eb) => eb.fn.countAll<number>().as('n')])
    .where('agentId', 'in', agentIds)
    .where('status', '!=', 'archived')
    .where('mergedInto', 'is', null)
    .groupBy('agentId')
    .execute()
  for (const row of rows) if (row.agentId) loads.set(row.agentId, Number(row.n))
  return loads
}

/** Follows tombstones to the prospect that absorbed `id` (chains of merges included). */
export async function resolveSurvivor(
  db: Executor,
  accountId: string,
  id: string,
): Promise<Prospect | undefined> {
  let prospect = await findProspect(db, accountId, id)
  for (let hops = 0; prospect?.mergedInto && hops < 100; hops++)
    prospect = await findProspect(db, accountId, prospect.mergedInto)
  return prospect
}

/** Prospects by id, whatever their state (merged away, deleted): event bodies show them as they are. */
export async function findProspectsByIds(db: Executor, ids: string[]): Promise<Prospect[]> {
  if (ids.length === 0) return []
  return (await prospectsByIds(db, { ids })).rows.map(prospectFromRow)
}

const prospectsByIds = reusable((db, v: { ids: string[] }) =>
  db.selectFrom('prospects').selectAll().where('id', 'in', v.ids),
)
