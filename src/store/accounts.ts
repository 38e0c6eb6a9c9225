import type { Executor } from './database.js'

export type Account = { id: string; name: string; countryCode: string; createdAt: number }

export async function insertAccount(db: Executor, account: Account): Promise<void> {
  await db
    .insertInto('accounts')
    .values({ ...account, settings: '{}' })
    .execute()
}

export async function findAccount(db: Executor, id: string): Promise<Account | undefined> {
  return db
    .selectFrom('accounts')
    .select(['id', 'name', 'countryCode', 'createdAt'])
    .where('id', '=', id)
    .executeTakeFirst()
}

/** The account's blocked phone and email values (stored forms), which never match. */
export async function findBlockedValues(db: Executor, accountId: string): Promise<Set<string>> {
  const rows = await db
    .selectFrom('blockedValues')
    .select('value')
    .where('accountId', '=', accountId)
    .execute()
  return new Set(rows.map((r) => r.value))
}

export async function blockValue(
  db: Executor,
  accountId: string,
  kind: 'phone' | 'email',
  value: string,
): Promise<void> {
  await db
    .insertInto('blockedValues')
    .values({ accountId, kind, value })
    .onConflict((oc) => oc.doNothing())
    .execute()
}
