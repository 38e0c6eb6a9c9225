import { countryDefaults } from '../domain/countries.js'
import { newId } from '../domain/ids.js'
import { ALL_INDUSTRIES, type Industry, isIndustry } from '../domain/industries.js'
import { isTimeZone, type OfficeHours } from '../domain/office-hours.js'
import { generatePassword, hashPassword } from '../domain/password.js'
import { fail, ok, type Result } from '../domain/result.js'
import {
  type Account,
  type AccountSettings,
  findAccount,
  insertAccount,
  updateAccountSettings,
} from '../store/accounts.js'
import { type Executor, inTransaction } from '../store/database.js'
import { findGroup, type Group, insertGroup, type LeadCategory } from '../store/groups.js'
import { findUserByEmail, insertUser, type User } from '../store/users.js'

/** The category every new group starts with; administrators add their own. */
const DEFAULT_CATEGORIES: LeadCategory[] = [{ key: 'sales', name: 'Sales' }]

export type NewAccount = { name: string; countryCode?: string; settings?: AccountSettings }

/** An account and its root group (named after the account), committed together. */
export async function createAccount(
  db: Executor,
  input: NewAccount,
  at = Date.now(),
): Promise<Result<{ account: Account; group: Group }>> {
  const countryCode = (input.countryCode ?? 'BR').toUpperCase()
  if (!/^[A-Z]{2}$/.test(countryCode))
    return fail('INVALID', `country: "${input.countryCode}" is not an ISO 3166-1 alpha-2 code`)
  if (!input.name.trim()) return fail('INVALID', 'name: must not be empty')
  const account: Account = {
    id: newId(at),
    name: input.name.trim(),
    countryCode,
    createdAt: at,
    settings: input.settings ?? {},
  }
  return inTransaction(db, async (tx) => {
    await insertAccount(tx, account)
    const group = await createGroupIn(tx, account, null, { name: account.name }, at)
    if (!group.ok) throw new Error(group.message)
    return ok({ account, group: group.value })
  })
}

/** Merges `settings` into the account's. */
export async function updateAccount(
  db: Executor,
  accountId: string,
  settings: AccountSettings,
): Promise<Result<Account>> {
  return inTransaction(db, async (tx) => {
    const account = await findAccount(tx, accountId)
    if (!account) return fail('NOT_FOUND', `account ${accountId} not found`)
    const updated = { ...account, settings: { ...account.settings, ...settings } }
    await updateAccountSettings(tx, accountId, updated.settings)
    return ok(updated)
  })
}

export type NewGroup = {
  name: string
  displayName?: string
  parentId?: string
  timezone?: string
  countryCode?: string
  type?: string[]
  officeHours?: OfficeHours | null
  distribution?: Group['distribution']
  absenceMessage?: string | null
  leadCategories?: LeadCategory[]
  defaultCategory?: string
  currency?: string
  distance?: 'km' | 'mi'
  industries?: Industry[]
}

/** A group under `parentId` (default: the account's root group); unset settings come from the parent. */
export async function createGroup(
  db: Executor,
  accountId: string,
  input: NewGroup,
  at = Date.now(),
): Promise<Result<Group>> {
  return inTransaction(db, async (tx) => {
    const account = await findAccount(tx, accountId)
    if (!account) return fail('NOT_FOUND', `account ${accountId} not found`)
    const parentId = input.parentId ?? (await rootGroupId(tx, accountId))
    const parent = parentId ? await findGroup(tx, accountId, parentId) : undefined
    if (!parent) return fail('NOT_FOUND', `parent group ${parentId} not found in account ${accountId}`)
    return createGroupIn(tx, account, parent, input, at)
  })
}

async function rootGroupId(db: Executor, accountId: string): Promise<string | undefined> {
  const root = await db
    .selectFrom('groups')
    .select('id')
    .where('accountId', '=', accountId)
    .where('parentId', 'is', null)
    .orderBy('id')
    .executeTakeFirst()
  return root?.id
}

async function createGroupIn(
  db: Executor,
  account: Account,
  parent: Group | null,
  input: NewGroup,
  at: number,
): Promise<Result<Group>> {
  const countryCode = (input.countryCode ?? parent?.countryCode ?? account.countryCode).toUpperCase()
  const defaults = countryDefaults(countryCode)
  const timezone = input.timezone ?? parent?.timezone ?? defaults.timezone
  if (!isTimeZone(timezone)) return fail('INVALID', `timezone: "${timezone}" is not an IANA time zone`)
  if (!/^[A-Z]{2}$/.test(countryCode))
    return fail('INVALID', `country: "${countryCode}" is not an ISO 3166-1 alpha-2 code`)
  const industries = input.industries ?? parent?.industries ?? ALL_INDUSTRIES
  const unknown = industries.find((i) => !isIndustry(i))
  if (unknown) return fail('INVALID', `industries: "${unknown}" is not one of ${ALL_INDUSTRIES.join(', ')}`)
  const leadCategories = input.leadCategories ?? parent?.leadCategories ?? DEFAULT_CATEGORIES
  const defaultCategory =
    input.defaultCategory ?? parent?.defaultCategory ?? leadCategories[0]?.key ?? 'sales'
  if (!leadCategories.some((c) => c.key === defaultCategory)) {
    return fail('INVALID', `defaultCategory: "${defaultCategory}" is not one of the group's categories`)
  }
  const group: Group = {
    id: newId(at),
    accountId: account.id,
    parentId: parent?.id ?? null,
    name: input.name,
    displayName: input.displayName ?? input.name,
    type: input.type ?? [],
    timezone,
    countryCode,
    officeHours: input.officeHours === undefined ? (parent?.officeHours ?? null) : input.officeHours,
    distribution: input.distribution ?? 'none',
    absenceMessage: input.absenceMessage ?? null,
    leadCategories,
    defaultCategory,
    currency: (input.currency ?? parent?.currency ?? defaults.currency).toUpperCase(),
    distance: input.distance ?? parent?.distance ?? 'km',
    industries,
    createdAt: at,
    roundRobinTurn: 0,
  }
  await insertGroup(db, group)
  return ok(group)
}

export type NewUser = {
  email: string
  firstName: string
  lastName: string
  profile: User['profile']
  groupIds?: string[]
  password?: string
  phone?: string
  legacyId?: string
  working?: boolean
  takesProspects?: boolean
}

/** A user with a scrypt-hashed password; when none is given one is generated and returned once. */
export async function createUser(
  db: Executor,
  accountId: string,
  input: NewUser,
  at = Date.now(),
): Promise<Result<{ user: User; password: string | null }>> {
  const email = input.email.trim().toLowerCase()
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email))
    return fail('INVALID', `email: "${input.email}" is not an email address`)
  const generated = input.password ? null : generatePassword()
  const passwordHash = await hashPassword(input.password ?? (generated as string))
  return inTransaction(db, async (tx) => {
    if (!(await findAccount(tx, accountId))) return fail('NOT_FOUND', `account ${accountId} not found`)
    if (await findUserByEmail(tx, accountId, email))
      return fail('CONFLICT', `email: ${email} is already a user of this account`)
    const groupIds = input.groupIds?.length
      ? input.groupIds
      : [await rootGroupId(tx, accountId)].filter((g) => g !== undefined)
    for (const groupId of groupIds) {
      if (!(await findGroup(tx, accountId, groupId)))
        return fail('NOT_FOUND', `group ${groupId} not found in account ${accountId}`)
    }
    const user: User = {
      id: newId(at),
      accountId,
      profile: input.profile,
      firstName: input.firstName,
      lastName: input.lastName,
      email,
      phone: input.phone ?? null,
      legacyId: input.legacyId ?? null,
      externalId: null,
      appFields: null,
      active: true,
      working: input.working ?? false,
      takesProspects: input.takesProspects ?? input.profile === 'agent',
      passwordHash,
      createdAt: at,
    }
    await insertUser(tx, user, groupIds)
    return ok({ user, password: generated })
  })
}
