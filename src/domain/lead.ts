import type { ErrorDetail } from '../http/errors.js'
import type { LeadInput } from '../http/schemas/lead.js'
import { type Email, parseEmail } from './email.js'
import { type Phone, parsePhone } from './phone.js'

/** The lead as stored: canonical field names only, defaults applied, phones and emails as received. */
export type StoredLead = Omit<LeadInput, 'source' | 'medium' | 'campaign' | 'leadId'> & { utmSource: string }

export type GroupDefaults = {
  currency: string
  distance: 'km' | 'mi'
  categories: string[]
  defaultCategory: string
}

const ALIASES = [
  ['source', 'utmSource'],
  ['medium', 'utmMedium'],
  ['campaign', 'utmCampaign'],
  ['leadId', 'providerLeadId'],
] as const
const ALIAS_NAMES: ReadonlySet<string> = new Set(ALIASES.map(([alias]) => alias))

type Money = { currency?: string }

/** Upper-cases a money currency, or gives it the group's default. */
function withCurrency<T extends Money | undefined>(money: T, currency: string): T {
  if (!money) return money
  return { ...money, currency: (money.currency ?? currency).toUpperCase() }
}

/**
 * Folds aliases into canonical names (the canonical name wins when both are sent), applies the
 * group's defaults (category, currency, odometer unit) and refuses what the schema cannot say:
 * a missing utmSource, an unknown category. Returns the refusals with their field paths.
 */
export function foldLead(
  input: LeadInput,
  defaults: GroupDefaults,
): { lead: StoredLead } | { problems: ErrorDetail[] } {
  // Copied without the aliases rather than deleting them: a deleted key turns the object into a
  // slow dictionary for everything after (the batch benchmark's profile showed it).
  const lead: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(input)) if (!ALIAS_NAMES.has(key)) lead[key] = value
  for (const [alias, canonical] of ALIASES) {
    const value = (input as Record<string, unknown>)[alias]
    if (lead[canonical] === undefined && value !== undefined) lead[canonical] = value
  }
  const problems: ErrorDetail[] = []
  findNulCharacters(input, [], problems)
  if (typeof lead.utmSource !== 'string' || !lead.utmSource.trim()) {
    problems.push({ path: '/utmSource', message: 'is required (or its deprecated alias source)', in: 'body' })
  }
  if (lead.category === undefined) lead.category = defaults.defaultCategory
  else if (!defaults.categories.includes(lead.category as string)) {
    problems.push({
      path: '/category',
      message: `must be one of the group's categories: ${defaults.categories.join(', ')}`,
      in: 'body',
    })
  }
  if (problems.length > 0) return { problems }
  const product = lead.product as Record<string, unknown> | undefined
  if (product) {
    const folded: Record<string, unknown> = { ...product }
    for (const field of ['price', 'reservation', 'monthlyPaymentsEstimate', 'creditAmountEstimate']) {
      folded[field] = withCurrency(product[field] as Money | undefined, defaults.currency)
      if (folded[field] === undefined) delete folded[field]
    }
    const odometer = product.odometer as { amount: number; unit?: string } | undefined
    if (odometer) folded.odometer = { ...odometer, unit: odometer.unit ?? defaults.distance }
    lead.product = folded
  }
  return { lead: lead as StoredLead }
}

/**
 * Paths of strings holding a NUL character: PostgreSQL text cannot store one, so such a lead is
 * refused up front on both engines instead of failing at commit on one of them.
 */
function findNulCharacters(value: unknown, path: (string | number)[], problems: ErrorDetail[]): void {
  if (typeof value === 'string') {
    if (value.includes('\u0000'))
      problems.push({ path: `/${path.join('/')}`, message: 'must not contain NUL characters', in: 'body' })
    return
  }
  if (!value || typeof value !== 'object') return
  const entries: [string | number, unknown][] = Array.isArray(value)
    ? [...value.entries()]
    : Object.entries(value)
  for (const [key, item] of entries) {
    path.push(key)
    findNulCharacters(item, path, problems)
    path.pop()
  }
}

export type Contacts = {
  phones: Phone[]
  emails: Email[]
  hasRecordedCall: boolean
  /** True when the lead has at least one phone or email that may match, or a recorded call. */
  usable: boolean
  problems: ErrorDetail[]
}

/**
 * Parses every phone and email of a lead under the group's country, drops the account's blocked
 * values from matching, and says why each refused contact was refused (identity.md §3).
 */
export function assessContacts(
  lead: Pick<StoredLead, 'phones' | 'emails' | 'history'>,
  country: string,
  blocked: ReadonlySet<string>,
): Contacts {
  const problems: ErrorDetail[] = []
  const phones = (lead.phones ?? []).map((raw, i) => {
    const phone = parsePhone(raw, country)
    if (phone.e164 && blocked.has(phone.e164))
      Object.assign(phone, { key: null, problem: 'is blocked for this account' })
    if (!phone.key)
      problems.push({ path: `/phones/${i}`, message: `${JSON.stringify(raw)} ${phone.problem}`, in: 'body' })
    return phone
  })
  const emails = (lead.emails ?? []).map((raw, i) => {
    const email = parseEmail(raw)
    if (email.stored && blocked.has(email.stored))
      Object.assign(email, { key: null, problem: 'is blocked for this account' })
    if (!email.key)
      problems.push({ path: `/emails/${i}`, message: `${JSON.stringify(raw)} ${email.problem}`, in: 'body' })
    return email
  })
  const hasRecordedCall = (lead.history ?? []).some((event) => event.type === 'call')
  const usable = hasRecordedCall || phones.some((p) => p.key) || emails.some((e) => e.key)
  if (!usable && phones.length === 0 && emails.length === 0) {
    problems.push({ path: '/phones', message: 'no phone, email or recorded call was given', in: 'body' })
  }
  return { phones, emails, hasRecordedCall, usable, problems }
}
