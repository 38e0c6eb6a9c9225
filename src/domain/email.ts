/**
 * Emails (identity.md §2): `stored` is trimmed and lower-cased with an NFC local part; `key` also
 * ignores what Gmail ignores (dots and `+tag` in the local part; googlemail.com is gmail.com).
 * Other providers keep `+tag`: many deliver it to a different mailbox. Invalid addresses and
 * placeholders are kept on the lead but have no key, so they never match.
 */
export type Email = { raw: string; stored: string | null; key: string | null; problem?: string }

const SYNTAX = /^[^\s@"(),:;<>[\]\\]+@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$/u
const PLACEHOLDER_DOMAINS = new Set(['example.com', 'example.org', 'example.net'])
const PLACEHOLDER_LOCALS = /^(noreply|no-reply|null|none|nobody)$/
const GMAIL = new Set(['gmail.com', 'googlemail.com'])

export function parseEmail(input: string): Email {
  const raw = input
  const trimmed = input.trim().toLowerCase()
  const at = trimmed.lastIndexOf('@')
  const local = at > 0 ? trimmed.slice(0, at).normalize('NFC') : trimmed
  const domain = at > 0 ? trimmed.slice(at + 1) : ''
  const stored = `${local}@${domain}`
  if (at <= 0 || !SYNTAX.test(stored))
    return { raw, stored: null, key: null, problem: 'is not an email address' }
  if (PLACEHOLDER_DOMAINS.has(domain) || PLACEHOLDER_LOCALS.test(local) || stored === 'test@test.com') {
    return { raw, stored: null, key: null, problem: 'is a placeholder address' }
  }
  return { raw, stored, key: emailKey(local, domain) }
}

function emailKey(local: string, domain: string): string {
  if (!GMAIL.has(domain)) return `${local}@${domain}`
  return `${local.split('+')[0]?.replaceAll('.', '')}@gmail.com`
}
