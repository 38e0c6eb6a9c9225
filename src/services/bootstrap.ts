import { ALL_SCOPES } from '../domain/scopes.js'
import { type Db, inTransaction } from '../store/database.js'
import { createIntegration } from './access.js'
import { createAccount, createUser } from './directory.js'

export type Bootstrapped = {
  email: string
  password: string
  key: string
  integrationName: string
  groupName: string
}

const MARKER = 'bootstrapped'

/**
 * First run (operations.md §2): on a database with no account, make a demo account, its group
 * "Ventas", an administrator and an all-scopes API Access, and return their secrets to print once.
 * The `installation` marker row is inserted first and is unique, so two processes starting
 * together on one PostgreSQL database bootstrap once; a database that ever had an account (or was
 * bootstrapped and emptied) is left alone.
 */
export async function bootstrapIfEmpty(
  db: Db,
  secretKey: Buffer,
  defaultCountry: string,
): Promise<Bootstrapped | null> {
  const existing = await db.selectFrom('accounts').select('id').limit(1).executeTakeFirst()
  if (existing) return null
  return inTransaction(db, async (tx) => {
    const claimed = await tx
      .insertInto('installation')
      .values({ key: MARKER, value: new Date().toISOString(), createdAt: Date.now() })
      .onConflict((oc) => oc.column('key').doNothing())
      .executeTakeFirst()
    if (Number(claimed.numInsertedOrUpdatedRows ?? 0) === 0) return null

    const created = await createAccount(tx, { name: 'Ventas', countryCode: defaultCountry })
    if (!created.ok) throw new Error(created.message)
    const { account, group } = created.value
    const admin = await createUser(tx, account.id, {
      email: 'admin@example.com',
      firstName: 'Admin',
      lastName: 'Ventas',
      profile: 'administrator',
      groupIds: [group.id],
    })
    if (!admin.ok) throw new Error(admin.message)
    const access = await createIntegration(
      tx,
      secretKey,
      { accountId: account.id, groupId: group.id, name: 'Demo API Access', scopes: ALL_SCOPES },
      'bootstrap',
    )
    if (!access.ok) throw new Error(access.message)
    return {
      email: admin.value.user.email,
      password: admin.value.password as string,
      key: access.value.key,
      integrationName: access.value.integration.name,
      groupName: group.name,
    }
  })
}
