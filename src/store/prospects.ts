import type { Selectable } from 'kysely'
import type { Contact, KeyType, MatchKey } from '../domain/merge.js'
import { foldName } from '../domain/names.js'
import { engineOf } from './connect.js'
import type { Executor, ProspectsTable } from './database.js'

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

export function prospectFromRow({ searchName: _derived, ...row }: Selectable<ProspectsTable>): Prospect {
  return {
    ...row,
    details: JSON.parse(row.details),
    phones: JSON.parse(row.phones),
    emails: JSON.parse(row.emails),
    additionalData: JSON.parse(row.additionalData),
    userMade: row.userMade === 1,
  }
}

/** The row of a prospect; `search_name` is derived here, so it always follows the names. */
function toRow(prospect: Prospect) {
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

export async function insertProspect(db: Executor, prospect: Prospect): Promise<void> {
  await db.insertInto('prospects').values(toRow(prospect)).execute()
}

export async function saveProspect(db: Executor, prospect: Prospect): Promise<void> {
  const { id, accountId: _account, createdAt: _created, ...row } = toRow(prospect)
  await db.updateTable('prospects').set(row).where('id', '=', id).execute()
}

export async function findProspect(
  db: Executor,
  accountId: string,
  id: string,
): Promise<Prospect | undefined> {
  const row = await db
    .selectFrom('prospects')
    .selectAll()
    .where('accountId', '=', accountId)
    .where('id', '=', id)
    .executeTakeFirst()
  return row && prospectFromRow(row)
}

/**
 * The key values alone, for `key_value IN (…)`: it lets both engines seek (account_id, key_value)
 * for each key. Given only the OR of (type, value) pairs, SQLite's planner walks every key of the
 * account instead, a cost that grows with the number of prospects.
 */
function keyValues(keys: MatchKey[]): string[] {
  return [...new Set(keys.map((k) => k.value))]
}

/** The active keys among `keys`, with the prospect holding each (from the active-key index). */
export async function findKeyHolders(
  db: Executor,
  accountId: string,
  keys: MatchKey[],
): Promise<(MatchKey & { prospectId: string })[]> {
  if (keys.length === 0) return []
  const rows = await db
    .selectFrom('prospectKeys')
    .select(['prospectId', 'keyType', 'keyValue'])
    .where('accountId', '=', accountId)
    .where('active', '=', 1)
    .where('keyValue', 'in', keyValues(keys))
    .where((eb) => eb.or(keys.map((k) => eb.and([eb('keyType', '=', k.type), eb('keyValue', '=', k.value)]))))
    .execute()
  return rows.map((r) => ({ prospectId: r.prospectId, type: r.keyType, value: r.keyValue }))
}

/**
 * Loads prospects for change. On PostgreSQL the rows are locked (in id order, so two workers
 * never lock the same pair in opposite orders) and a row merged away meanwhile drops out of the
 * result; SQLite already runs one writer at a time.
 */
export async function lockProspects(db: Executor, accountId: string, ids: string[]): Promise<Prospect[]> {
  if (ids.length === 0) return []
  let query = db
    .selectFrom('prospects')
    .selectAll()
    .where('accountId', '=', accountId)
    .where('id', 'in', ids)
    .where('mergedInto', 'is', null)
    .orderBy('id')
  if (engineOf(db) === 'postgres') query = query.forUpdate()
  return (await query.execute()).map(prospectFromRow)
}

/** The most recent archived prospect that held one of `keys`: a returning person's history. */
export async function findPreviousHolder(
  db: Executor,
  accountId: string,
  keys: MatchKey[],
): Promise<string | null> {
  if (keys.length === 0) return null
  const row = await db
    .selectFrom('prospectKeys')
    .innerJoin('prospects', 'prospects.id', 'prospectKeys.prospectId')
    .select('prospectKeys.prospectId')
    .where('prospectKeys.accountId', '=', accountId)
    .where('prospectKeys.active', '=', 0)
    .where('prospectKeys.keyValue', 'in', keyValues(keys))
    .where('prospects.deletedAt', 'is', null)
    .where((eb) =>
      eb.or(
        keys.map((k) =>
          eb.and([eb('prospectKeys.keyType', '=', k.type), eb('prospectKeys.keyValue', '=', k.value)]),
        ),
      ),
    )
    .orderBy('prospectKeys.prospectId', 'desc')
    .executeTakeFirst()
  return row?.prospectId ?? null
}

/** Links keys to a prospect. Throws a unique violation when another active prospect holds one. */
export async function linkKeys(
  db: Executor,
  accountId: string,
  prospectId: string,
  keys: { type: KeyType; key: string }[],
): Promise<void> {
  if (keys.length === 0) return
  await db
    .insertInto('prospectKeys')
    .values(keys.map((k) => ({ accountId, keyType: k.type, keyValue: k.key, prospectId, active: 1 })))
    .execute()
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
  const rows = await db.selectFrom('prospects').selectAll().where('id', 'in', ids).execute()
  return rows.map(prospectFromRow)
}
