import { createHash, randomBytes } from 'node:crypto'

/**
 * API keys: `vk_` + 32 random bytes in base64url (256 bits; the spec asks for at least 128).
 * The prefix lets secret scanners and people recognise a Ventas key; base64url keeps it safe in a
 * query string, where most clients of the original API send it.
 */
export function generateApiKey(): string {
  return `vk_${randomBytes(32).toString('base64url')}`
}

/**
 * The lookup column. A plain SHA-256 is enough for a 256-bit random key (no dictionary to
 * attack), and it keeps authentication one indexed equality lookup; comparing hashes of equal
 * length through the index leaks nothing useful about the key.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

/** What a listing may show without revealing the key: the prefix and the last four characters. */
export function maskApiKey(key: string): string {
  return `${key.slice(0, 3)}…${key.slice(-4)}`
}
