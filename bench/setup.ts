import { ALL_SCOPES } from '../src/domain/scopes.js'
import { createIntegration } from '../src/services/access.js'
import { createAccount } from '../src/services/directory.js'
import type { TestContext } from '../test/helper.js'

/** A Brazilian account, its root group and an all-scopes integration there: what every benchmark loads into. */
export async function benchAccount(t: TestContext) {
  const created = await createAccount(t.db, { name: 'Bench', countryCode: 'BR' })
  if (!created.ok) throw new Error(created.message)
  const { account, group } = created.value
  const access = await createIntegration(
    t.db,
    t.secretKey,
    { accountId: account.id, groupId: group.id, name: 'bench', scopes: ALL_SCOPES },
    'bench',
  )
  if (!access.ok) throw new Error(access.message)
  return { account, group, integration: access.value.integration }
}
