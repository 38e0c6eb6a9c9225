/**
 * Merge rules (identity.md §4), pure: which prospect survives, which fields it takes, which keys
 * it links. The store applies the plan inside one transaction.
 */
export const MAX_PHONES = 20
export const MAX_EMAILS = 20

export type KeyType = 'phone' | 'email'
export type MatchKey = { type: KeyType; value: string }
/** A contact as a prospect holds it: the stored form shown to clients and its match key. */
export type Contact = { value: string; key: string }

export type ProspectFields = {
  firstName: string
  lastName: string
  details: Record<string, unknown>
}

/** Fields a survivor keeps when it has them, and takes from newer data when it does not. */
export const FILLABLE_DETAILS = [
  'nin',
  'address',
  'subLocality',
  'locality',
  'region',
  'country',
  'zipCode',
] as const

const isEmpty = (value: unknown) =>
  value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0)

/** The oldest prospect survives a merge: the one clients have known longest (ids are time-ordered). */
export function chooseSurvivor<T extends { id: string; createdAt: number }>(candidates: T[]): T {
  const [first, ...rest] = candidates
  if (!first) throw new Error('chooseSurvivor needs at least one candidate')
  return rest.reduce(
    (oldest, p) =>
      p.createdAt < oldest.createdAt || (p.createdAt === oldest.createdAt && p.id < oldest.id) ? p : oldest,
    first,
  )
}

/** The survivor keeps its own non-empty fields; empty ones are filled from `newer`. */
export function fillEmpty(survivor: ProspectFields, newer: Partial<ProspectFields>): ProspectFields {
  const details = { ...survivor.details }
  for (const field of FILLABLE_DETAILS) {
    if (isEmpty(details[field]) && !isEmpty(newer.details?.[field])) details[field] = newer.details?.[field]
  }
  return {
    firstName: survivor.firstName || newer.firstName || '',
    lastName: survivor.lastName || newer.lastName || '',
    details,
  }
}

/**
 * The union of a prospect's contacts with new ones, one per match key, capped (20 phones, 20
 * emails): a contact past the cap is not linked and is reported, so one shared device or typo
 * cannot glue many people together.
 */
export function unionContacts(
  existing: Contact[],
  added: Contact[],
  cap: number,
): { contacts: Contact[]; linked: Contact[]; skipped: Contact[] } {
  const contacts = [...existing]
  const keys = new Set(existing.map((c) => c.key))
  const linked: Contact[] = []
  const skipped: Contact[] = []
  for (const contact of added) {
    if (keys.has(contact.key)) continue
    if (contacts.length >= cap) {
      skipped.push(contact)
      continue
    }
    keys.add(contact.key)
    contacts.push(contact)
    linked.push(contact)
  }
  return { contacts, linked, skipped }
}

/** A lead's fields as prospect fields: names, and the details the fill-empty rule covers. */
export function fieldsFromLead(
  lead: { firstName?: string; lastName?: string } & Partial<
    Record<(typeof FILLABLE_DETAILS)[number], unknown>
  >,
): ProspectFields {
  const details: Record<string, unknown> = {}
  for (const field of FILLABLE_DETAILS) if (lead[field] !== undefined) details[field] = lead[field]
  return { firstName: lead.firstName ?? '', lastName: lead.lastName ?? '', details }
}

/**
 * The contacts of parsed phones and emails that may match (usable and not blocked), in the form a
 * prospect holds them, and their match keys.
 */
export function matchable(contacts: {
  phones: { e164: string | null; key: string | null }[]
  emails: { stored: string | null; key: string | null }[]
}): { phones: Contact[]; emails: Contact[]; keys: MatchKey[] } {
  const phones = contacts.phones.flatMap((p) => (p.e164 && p.key ? [{ value: p.e164, key: p.key }] : []))
  const emails = contacts.emails.flatMap((e) => (e.stored && e.key ? [{ value: e.stored, key: e.key }] : []))
  const keys: MatchKey[] = [
    ...phones.map((p) => ({ type: 'phone' as const, value: p.key })),
    ...emails.map((e) => ({ type: 'email' as const, value: e.key })),
  ]
  return { phones, emails, keys }
}
