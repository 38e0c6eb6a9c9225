import type { Result } from '../../domain/result.js'
import { createAccount, createGroup, createUser, updateAccount } from '../../services/directory.js'
import type { User } from '../../store/users.js'
import { type CliContext, CliError } from '../context.js'
import type { Command } from '../main.js'

const PROFILES = ['administrator', 'operator', 'agent'] as const

/** Unwraps a service result, turning an expected failure into the CLI's refusal. */
export function orFail<T>(result: Result<T>): T {
  if (!result.ok) throw new CliError(result.code, result.message)
  return result.value
}

function required(values: Record<string, unknown>, name: string): string {
  const value = values[name]
  if (typeof value !== 'string' || !value) throw new CliError('INVALID', `--${name} is required`)
  return value
}

export const accountsCreate: Command = {
  usage: 'accounts create --name N [--country BR] [--webhook-fan-out]',
  options: { name: { type: 'string' }, country: { type: 'string' }, 'webhook-fan-out': { type: 'boolean' } },
  async run(ctx: CliContext, values) {
    const country = (values.country as string | undefined) ?? ctx.config.defaultCountry
    const { account, group } = orFail(
      await createAccount(ctx.db, {
        name: required(values, 'name'),
        countryCode: country,
        settings: { webhookFanOut: values['webhook-fan-out'] === true },
      }),
    )
    return {
      text: `account ${account.id} "${account.name}" (${account.countryCode}); root group ${group.id} "${group.name}"`,
      json: { account, rootGroup: group },
    }
  },
}

/** Account settings; today the one that lets a group hold several webhook subscriptions. */
export const accountsUpdate: Command = {
  usage: 'accounts update --account A --webhook-fan-out true|false',
  options: { account: { type: 'string' }, 'webhook-fan-out': { type: 'string' } },
  async run(ctx: CliContext, values) {
    const fanOut = required(values, 'webhook-fan-out')
    if (fanOut !== 'true' && fanOut !== 'false')
      throw new CliError('INVALID', '--webhook-fan-out must be true or false')
    const account = orFail(
      await updateAccount(ctx.db, required(values, 'account'), { webhookFanOut: fanOut === 'true' }),
    )
    return {
      text: `account ${account.id}: webhook fan-out ${account.settings.webhookFanOut ? 'on' : 'off'}`,
      json: { account },
    }
  },
}

export const groupsCreate: Command = {
  usage: 'groups create --account A --name N [--parent G] [--timezone TZ] [--country CC]',
  options: {
    account: { type: 'string' },
    name: { type: 'string' },
    parent: { type: 'string' },
    timezone: { type: 'string' },
    country: { type: 'string' },
  },
  async run(ctx, values) {
    const group = orFail(
      await createGroup(ctx.db, required(values, 'account'), {
        name: required(values, 'name'),
        parentId: values.parent as string | undefined,
        timezone: values.timezone as string | undefined,
        countryCode: values.country as string | undefined,
      }),
    )
    return {
      text: `group ${group.id} "${group.name}" (${group.timezone}, ${group.countryCode})`,
      json: { group },
    }
  },
}

export const usersCreate: Command = {
  usage:
    'users create --account A --email E --first F --last L --profile administrator|operator|agent [--groups G1,G2] [--password P] [--working]',
  options: {
    account: { type: 'string' },
    email: { type: 'string' },
    first: { type: 'string' },
    last: { type: 'string' },
    profile: { type: 'string' },
    groups: { type: 'string' },
    password: { type: 'string' },
    working: { type: 'boolean' },
  },
  async run(ctx, values) {
    const profile = required(values, 'profile') as User['profile']
    if (!PROFILES.includes(profile))
      throw new CliError('INVALID', `--profile must be one of ${PROFILES.join(', ')}`)
    const { user, password } = orFail(
      await createUser(ctx.db, required(values, 'account'), {
        email: required(values, 'email'),
        firstName: required(values, 'first'),
        lastName: required(values, 'last'),
        profile,
        groupIds: (values.groups as string | undefined)?.split(',').filter(Boolean),
        password: values.password as string | undefined,
        working: values.working === true,
      }),
    )
    const { passwordHash: _hidden, ...shown } = user
    const text = `user ${user.id} ${user.email} (${user.profile})${password ? `\npassword: ${password}   (shown once)` : ''}`
    return { text, json: { user: shown, ...(password ? { password } : {}) } }
  },
}
