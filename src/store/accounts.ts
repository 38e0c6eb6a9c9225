import { type Executor, reusable } from './database.js'

/** Account-wide choices. `webhookFanOut`: a group may hold several active subscriptions (webhooks.md §2). */
export type AccountSettings = { webhookFanOut?: boolean }

export type Account = {
  id: string
  name: string
  countryCode: string
  createdAt: number
  settings: AccountSettings
}

export async function insertAccount(db: Executor, account: Account): Promise<void> {
  await db
    .insertInto('accounts')
    .values({ ...account, settings: JSON.stringify(account.settings) })
    .execute()
}

export async function findAccount(db: Executor, id: string): Promise<Account | undefined> {
  const [row] = (await accountById(db, { id })).rows
  return row && { ...row, settings: JSON.parse(row.settings) }
}

/** Every prospect shown (and every v1 answer) runs it: compiled once. */
const accountById = reusable((db, v: { id: string }) =>
  db.selectFrom('accounts').selectAll().where('id', '=', v.id),
)

export async function updateAccountSettings(
  db: Executor,
  id: string,
  settings: AccountSettings,
): Promise<void> {
  await db
    .updateTable('accounts')
    .set({ settings: JSON.stringify(settings) })
    .where('id', '=', id)
    .execute()
}

/** The account's blocked phone and email values (stored forms), which never match. */
export async function findBlockedValues(db: Executor, accountId: string): Promise<Set<string>> {
  const { rows } = await blockedOf(db, { accountId })
  return new Set(rows.map((r) => r.value))
}

/** Every lead accepted runs it: compiled once. */
const blockedOf = reusable((db, v: { accountId: string }) =>
  db.selectFrom('blockedValues').select('value').where('accountId', '=', v.accountId),
)

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
