import { providerKeyOf } from '../../domain/scopes.js'
import {
  createIntegration,
  revealKey,
  revokeIntegration,
  rotateIntegrationKey,
} from '../../services/access.js'
import { findGroupById } from '../../store/groups.js'
import { type Integration, listIntegrations } from '../../store/integrations.js'
import { CliError } from '../context.js'
import type { Command } from '../main.js'
import { orFail } from './directory.js'

/** An integration as the CLI shows it: never the sealed key or its hash. */
function shown(integration: Integration) {
  const { keySealed: _sealed, keyHash: _hash, ...rest } = integration
  return { ...rest, providerKey: providerKeyOf(integration.scopes) }
}

export const keysCreate: Command = {
  usage: 'keys create --group G --name N --scopes s1,s2 [--act-as U] [--rate-limit N]',
  options: {
    group: { type: 'string' },
    name: { type: 'string' },
    scopes: { type: 'string' },
    'act-as': { type: 'string' },
    'rate-limit': { type: 'string' },
  },
  async run(ctx, values) {
    const groupId = values.group as string | undefined
    if (!groupId) throw new CliError('INVALID', '--group is required')
    const group = await findGroupById(ctx.db, groupId)
    if (!group) throw new CliError('NOT_FOUND', `group ${groupId} not found`)
    const rateLimit = values['rate-limit'] === undefined ? null : Number(values['rate-limit'])
    if (rateLimit !== null && !(Number.isInteger(rateLimit) && rateLimit > 0)) {
      throw new CliError('INVALID', '--rate-limit must be a positive whole number of requests per second')
    }
    const { integration, key } = orFail(
      await createIntegration(
        ctx.db,
        ctx.secretKey,
        {
          accountId: group.accountId,
          groupId,
          name: (values.name as string | undefined) ?? '',
          scopes: ((values.scopes as string | undefined) ?? '').split(',').filter(Boolean),
          actAsUserId: (values['act-as'] as string | undefined) ?? null,
          rateLimit,
        },
        'cli',
      ),
    )
    return {
      text: `integration ${integration.id} "${integration.name}" (${integration.scopes.join(', ')})\nkey: ${key}`,
      json: { integration: shown(integration), key },
    }
  },
}

export const keysList: Command = {
  usage: 'keys list [--account A] [--reveal]',
  options: { account: { type: 'string' }, reveal: { type: 'boolean' } },
  async run(ctx, values) {
    const integrations = await listIntegrations(ctx.db, values.account as string | undefined)
    const rows = integrations.map((i) => ({
      ...shown(i),
      ...(values.reveal ? { key: revealKey(i, ctx.secretKey) } : {}),
    }))
    const text = rows
      .map((r) =>
        [
          r.id,
          r.revokedAt ? 'revoked' : 'active ',
          'key' in r ? r.key : r.keyHint,
          `"${r.name}"`,
          `group ${r.groupId}`,
          r.scopes.join(','),
          `last used ${r.lastUsedAt ? new Date(r.lastUsedAt).toISOString() : 'never'}`,
        ].join('  '),
      )
      .join('\n')
    return { text: text || 'no integrations', json: { integrations: rows } }
  },
}

export const keysRevoke: Command = {
  usage: 'keys revoke ID',
  options: {},
  async run(ctx, _values, [id]) {
    if (!id) throw new CliError('INVALID', 'the integration id is required: keys revoke ID')
    const integration = orFail(await revokeIntegration(ctx.db, id, 'cli'))
    return { text: `integration ${id} revoked`, json: { integration: shown(integration) } }
  },
}

export const keysRotate: Command = {
  usage: 'keys rotate ID',
  options: {},
  async run(ctx, _values, [id]) {
    if (!id) throw new CliError('INVALID', 'the integration id is required: keys rotate ID')
    const { integration, key } = orFail(await rotateIntegrationKey(ctx.db, ctx.secretKey, id, 'cli'))
    return {
      text: `integration ${id} has a new key (the old one no longer works)\nkey: ${key}`,
      json: { integration: shown(integration), key },
    }
  },
}
