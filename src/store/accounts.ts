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

export async function listAccounts(db: Executor): Promise<Account[]> {
  return db.selectFrom('accounts').select(['id', 'name', 'countryCode', 'createdAt']).orderBy('id').execute()
}
