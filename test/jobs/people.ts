import type { LeadInput } from '../../src/http/schemas/lead.js'
import { checkLead } from '../../src/services/checking.js'
import { storeLeads } from '../../src/services/intake.js'
import type { Db } from '../../src/store/database.js'
import type { Group } from '../../src/store/groups.js'
import type { Integration } from '../../src/store/integrations.js'

/** A deterministic PRNG (mulberry32): the same seed makes the same people and the same order. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Fisher–Yates with the given PRNG; returns a new array. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}

type Format = (ddd: string, eight: string) => string
const split = (eight: string) => [eight.slice(0, 4), eight.slice(4)]

/** Ways people write one Brazilian mobile `9 XXXX-XXXX` (identity.md §1); `eight` is what follows the 9. */
export const PHONE_FORMATS: Format[] = [
  (d, e) => `+55 ${d} 9${split(e).join('-')}`,
  (d, e) => `(${d}) 9${split(e).join('-')}`,
  (d, e) => `55${d}9${e}`,
  (d, e) => `0055 ${d} 9${split(e).join(' ')}`,
  (d, e) => `55${d}9${e}@s.whatsapp.net`,
  (d, e) => `tel:+55-${d}-9${split(e).join('-')}`,
]

/** The number as written before the ninth digit; only mobiles whose eight digits start 6–9 have one. */
export const NINTH_DIGITLESS: Format = (d, e) => `+55 ${d} ${split(e).join('-')}`

export type Person = {
  index: number
  ddd: string
  /** The eight digits after the mobile's leading 9. */
  eight: string
  email: string
  /** The phone's match key: E.164 with the ninth digit. */
  phoneKey: string
}

/** `count` people with distinct mobiles and emails; one in four has a mobile that never folds (first digit 2–5). */
export function makePeople(count: number, random: () => number): Person[] {
  const seen = new Set<string>()
  const people: Person[] = []
  while (people.length < count) {
    const index = people.length
    const ddd = ['11', '21', '51'][Math.floor(random() * 3)] as string
    const first = index % 4 === 3 ? 2 + Math.floor(random() * 4) : 6 + Math.floor(random() * 4)
    const eight = `${first}${String(Math.floor(random() * 10_000_000)).padStart(7, '0')}`
    const phoneKey = `+55${ddd}9${eight}`
    if (seen.has(phoneKey)) continue
    seen.add(phoneKey)
    people.push({ index, ddd, eight, email: `pessoa${index}@correio-azul.com.br`, phoneKey })
  }
  return people
}

export type PlannedLead = { person: Person; input: LeadInput; note: string | null }

/**
 * A person's leads: every third carries both contacts (so the person's phone-only and email-only
 * prospects must end merged), the others only the phone or only the email. The phone's format
 * turns through every way of writing it, the ninth-digit-less form included when the number has one.
 */
export function leadsOf(person: Person, count: number, options: { noteEvery?: number } = {}): PlannedLead[] {
  const folds = /^[6-9]/.test(person.eight)
  const formats = folds ? [...PHONE_FORMATS, NINTH_DIGITLESS] : PHONE_FORMATS
  return Array.from({ length: count }, (_, j) => {
    const kind = (['both', 'phone', 'email'] as const)[j % 3]
    const format = formats[(person.index + j) % formats.length] as Format
    const phone = format(person.ddd, person.eight)
    const email = j % 2 === 1 ? person.email.toUpperCase() : person.email
    const note = options.noteEvery && j % options.noteEvery === 0 ? `note ${person.index}.${j}` : null
    const input: LeadInput = {
      utmSource: 'jobs-test',
      firstName: `Pessoa ${person.index}`,
      ...(kind !== 'email' ? { phones: [phone] } : {}),
      ...(kind !== 'phone' ? { emails: [email] } : {}),
      ...(note ? { history: [{ type: 'note' as const, content: note }] } : {}),
    }
    return { person, input, note }
  })
}

/**
 * Accepts leads as the batch route does (checked, then stored with their jobs, 500 per
 * transaction) without processing them: the workers under test do that. Returns the lead ids in order.
 */
export async function storeUnprocessed(
  db: Db,
  integration: Integration,
  group: Group,
  inputs: LeadInput[],
): Promise<string[]> {
  const ids: string[] = []
  for (let start = 0; start < inputs.length; start += 500) {
    const at = Date.now()
    const leads = inputs.slice(start, start + 500).map((input) => {
      const checked = checkLead(input, { integration, group, industry: 'retail', blocked: new Set(), at })
      if (!checked.ok)
        throw new Error(`lead refused: ${JSON.stringify(checked.refusal)} ${JSON.stringify(input)}`)
      return checked.lead
    })
    const stored = await storeLeads(db, leads, { at })
    if (!stored.ok) throw new Error(`leads not stored: ${JSON.stringify(stored.refusal)}`)
    ids.push(...stored.accepted.map((a) => a.lead.id))
  }
  return ids
}
