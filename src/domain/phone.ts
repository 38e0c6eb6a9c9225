import { type CountryCode, parsePhoneNumberFromString } from 'libphonenumber-js/max'

/**
 * Phones (identity.md §1). Three forms of one input:
 * - `raw`: what the lead said, kept as given;
 * - `e164`: the stored form, or null when the input is not a possible number anywhere;
 * - `key`: the match key, which folds the ways one subscriber's number is written (Brazil's
 *   ninth digit, Argentina's mobile `9`, Mexico's old mobile `1`). Two phones match when their
 *   keys are equal; an unusable phone has no key and never matches.
 */
export type Phone = { raw: string; e164: string | null; key: string | null; problem?: string }

const WHATSAPP_ID = /^(\d{8,15})@(s\.whatsapp\.net|c\.us)$/i

/** The text libphonenumber should read: `tel:` URIs unwrapped, WhatsApp ids and `00` prefixes made international. */
function clean(input: string): string {
  let text = input.trim().replace(/^tel:/i, '')
  const whatsapp = WHATSAPP_ID.exec(text)
  if (whatsapp) return `+${whatsapp[1]}`
  text = text.replace(/^00(?=[1-9])/, '+').replace(/^\+\s*00(?=[1-9])/, '+')
  return text
}

/** Mexico dropped the mobile `1` in 2019; `+52 1 55 1234 5678` and `+52 55 1234 5678` are one number. */
function dropMexicanMobileOne(e164: string): string {
  return /^\+521\d{10}$/.test(e164) ? `+52${e164.slice(4)}` : e164
}

export function parsePhone(input: string, defaultCountry: string): Phone {
  const raw = input
  const text = clean(input)
  if (!/\d/.test(text)) return { raw, e164: null, key: null, problem: 'has no digits' }
  const letters = text.replace(/\b(ext|extension|ramal|x)\b\.?/gi, '').match(/[a-z]/gi)
  if (letters) return { raw, e164: null, key: null, problem: 'contains letters' }
  const parsed = parsePhoneNumberFromString(text, defaultCountry as CountryCode)
  if (!parsed) return { raw, e164: null, key: null, problem: 'is not a phone number' }
  const e164 = dropMexicanMobileOne(parsed.number)
  const national = e164.slice(1 + parsed.countryCallingCode.length)
  if (/^(\d)\1+$/.test(national)) return { raw, e164: null, key: null, problem: 'is one digit repeated' }
  const possible =
    e164 === parsed.number ? parsed.isPossible() : Boolean(parsePhoneNumberFromString(e164)?.isPossible())
  if (!possible) return { raw, e164: null, key: null, problem: 'is not a possible number (wrong length)' }
  return { raw, e164, key: matchKey(e164) }
}

/**
 * The match key of a stored (E.164) phone:
 * - Brazil: an eight-digit subscriber number starting 6–9 was a mobile before the ninth digit was
 *   added; it takes the `9` so both forms meet. Landlines (first digit 2–5) never fold.
 * - Argentina: mobiles are dialled internationally with a `9` after `+54`; the key drops it.
 * - Mexico: the obsolete mobile `1` after `+52` is dropped (already done for the stored form).
 */
export function matchKey(e164: string): string {
  const brazilOldMobile = /^\+55(\d{2})([6-9]\d{7})$/.exec(e164)
  if (brazilOldMobile) return `+55${brazilOldMobile[1]}9${brazilOldMobile[2]}`
  const argentinaMobile = /^\+549(\d{10})$/.exec(e164)
  if (argentinaMobile) return `+54${argentinaMobile[1]}`
  return dropMexicanMobileOne(e164)
}
