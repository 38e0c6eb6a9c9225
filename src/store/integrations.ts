import type { Selectable } from 'kysely'
import type { Scope } from '../domain/scopes.js'
import { type Executor, type IntegrationsTable, reusable } from './database.js'

export type Integration = Omit<Selectable<IntegrationsTable>, 'scopes'> & { scopes: Scope[] }

function fromRow(row: Selectable<IntegrationsTable>): Integration {
  return { ...row, scopes: JSON.parse(row.scopes) }
}

export async function insertIntegration(db: Executor, integration: Integration): Promise<void> {
  await db
    .insertInto('integrations')
    .values({ ...integration, scopes: JSON.stringify(integration.scopes) })
    .execute()
}

/** Authentication's lookup: one equality on the unique hash index. Revoked rows are returned too. */
export async function findIntegrationByKeyHash(
  db: Executor,
  keyHash: string,
): Promise<Integration | undefined> {
  const [row] = (await byKeyHash(db, { keyHash })).rows
  return row && fromRow(row)
}

/** Every authenticated request runs it: compiled once. */
const byKeyHash = reusable((db, v: { keyHash: string }) =>
  db.selectFrom('integrations').selectAll().where('keyHash', '=', v.keyHash),
)

export async function findIntegration(
  db: Executor,
  id: string,
  accountId?: string,
): Promise<Integration | undefined> {
  let query = db.selectFrom('integrations').selectAll().where('id', '=', id)
  if (accountId) query = query.where('accountId', '=', accountId)
  const row = await query.executeTakeFirst()
  return row && fromRow(row)
}

export async function listIntegrations(db: Executor, accountId?: string): Promise<Integration[]> {
  let query = db.selectFrom('integrations').selectAll()
  if (accountId) query = query.where('accountId', '=', accountId)
  const rows = await query.orderBy('id').execute()
  return rows.map(fromRow)
}

export async function revokeIntegration(db: Executor, id: string, at: number): Promise<void> {
  await db.updateTable('integrations').set({ revokedAt: at }).where('id', '=', id).execute()
}

export async function replaceIntegrationKey(
  db: Executor,
  id: string,
  key: Pick<Integration, 'keyHash' | 'keySealed' | 'keyHint'>,
): Promise<void> {
  await db.updateTable('integrations').set(key).where('id', '=', id).execute()
}

/** Writes many `lastUsedAt` values at once; never moves one backwards. */
export async function touchIntegrations(db: Executor, uses: Map<string, number>): Promise<void> {
  for (const [id, at] of uses) {
    await db
      .updateTable('integrations')
      .set({ lastUsedAt: at })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('lastUsedAt', 'is', null), eb('lastUsedAt', '<', at)]))
      .execute()
  }
}
