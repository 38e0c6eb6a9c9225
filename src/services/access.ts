import { generateApiKey, hashApiKey, maskApiKey } from '../domain/api-key.js'
import { newId } from '../domain/ids.js'
import { fail, ok, type Result } from '../domain/result.js'
import { isScope, type Scope } from '../domain/scopes.js'
import { open, seal } from '../domain/secret-box.js'
import { recordAudit } from '../store/audit.js'
import { type Executor, inTransaction } from '../store/database.js'
import { findGroup } from '../store/groups.js'
import {
  findIntegration,
  type Integration,
  insertIntegration,
  revokeIntegration as markRevoked,
  replaceIntegrationKey,
} from '../store/integrations.js'
import { findUser } from '../store/users.js'

/**
 * API Access integrations (api.md §1): the key is returned to the caller once at creation and
 * rotation, stored sealed (AES-256-GCM) for the console to reveal, and found by its SHA-256.
 * Every create, revoke and rotate leaves an audit record in the same transaction.
 */
export type NewIntegration = {
  accountId: string
  groupId: string
  name: string
  scopes: string[]
  actAsUserId?: string | null
  rateLimit?: number | null
  language?: string | null
}

function keyColumns(key: string, secretKey: Buffer) {
  return { keyHash: hashApiKey(key), keySealed: seal(key, secretKey), keyHint: maskApiKey(key) }
}

export async function createIntegration(
  db: Executor,
  secretKey: Buffer,
  input: NewIntegration,
  actor: string,
  at = Date.now(),
): Promise<Result<{ integration: Integration; key: string }>> {
  const unknown = input.scopes.find((s) => !isScope(s))
  if (unknown !== undefined) return fail('INVALID', `scopes: "${unknown}" is not a scope`)
  if (input.scopes.length === 0) return fail('INVALID', 'scopes: at least one scope is needed')
  if (!input.name.trim()) return fail('INVALID', 'name: must not be empty')
  return inTransaction(db, async (tx) => {
    const group = await findGroup(tx, input.accountId, input.groupId)
    if (!group) return fail('NOT_FOUND', `group ${input.groupId} not found in account ${input.accountId}`)
    if (input.actAsUserId && !(await findUser(tx, input.accountId, input.actAsUserId))) {
      return fail('NOT_FOUND', `user ${input.actAsUserId} not found in account ${input.accountId}`)
    }
    const key = generateApiKey()
    const integration: Integration = {
      id: newId(at),
      accountId: input.accountId,
      groupId: group.id,
      actAsUserId: input.actAsUserId ?? null,
      name: input.name.trim(),
      scopes: [...new Set(input.scopes as Scope[])],
      ...keyColumns(key, secretKey),
      rateLimit: input.rateLimit ?? null,
      language: input.language ?? null,
      createdAt: at,
      createdBy: actor,
      revokedAt: null,
      lastUsedAt: null,
    }
    await insertIntegration(tx, integration)
    await recordAudit(
      tx,
      {
        accountId: integration.accountId,
        actor,
        action: 'integration.created',
        subjectType: 'integration',
        subjectId: integration.id,
        details: { name: integration.name, scopes: integration.scopes },
      },
      at,
    )
    return ok({ integration, key })
  })
}

export async function revokeIntegration(
  db: Executor,
  id: string,
  actor: string,
  at = Date.now(),
): Promise<Result<Integration>> {
  return inTransaction(db, async (tx) => {
    const integration = await findIntegration(tx, id)
    if (!integration) return fail('NOT_FOUND', `integration ${id} not found`)
    if (integration.revokedAt !== null) return fail('CONFLICT', `integration ${id} is already revoked`)
    await markRevoked(tx, id, at)
    await recordAudit(
      tx,
      {
        accountId: integration.accountId,
        actor,
        action: 'integration.revoked',
        subjectType: 'integration',
        subjectId: id,
      },
      at,
    )
    return ok({ ...integration, revokedAt: at })
  })
}

/** A new key for the same integration; the old key stops working at once. */
export async function rotateIntegrationKey(
  db: Executor,
  secretKey: Buffer,
  id: string,
  actor: string,
  at = Date.now(),
): Promise<Result<{ integration: Integration; key: string }>> {
  return inTransaction(db, async (tx) => {
    const integration = await findIntegration(tx, id)
    if (!integration) return fail('NOT_FOUND', `integration ${id} not found`)
    if (integration.revokedAt !== null)
      return fail('CONFLICT', `integration ${id} is revoked; create a new one`)
    const key = generateApiKey()
    const columns = keyColumns(key, secretKey)
    await replaceIntegrationKey(tx, id, columns)
    await recordAudit(
      tx,
      {
        accountId: integration.accountId,
        actor,
        action: 'integration.rotated',
        subjectType: 'integration',
        subjectId: id,
      },
      at,
    )
    return ok({ integration: { ...integration, ...columns }, key })
  })
}

/** The key in clear, for the console's "reveal" button and `keys list --reveal`. */
export function revealKey(integration: Integration, secretKey: Buffer): string {
  return open(integration.keySealed, secretKey)
}
