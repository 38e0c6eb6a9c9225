import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

/**
 * AES-256-GCM under the server's secret key, for values that must be shown again later (API keys
 * in the console) but must never be readable from a copy of the database alone.
 * Stored form: `v1.` + base64url(iv(12) | tag(16) | ciphertext). The version prefix leaves room
 * to rotate the scheme.
 */
export function seal(plaintext: string, key: Buffer): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return `v1.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`
}

/** Opens a sealed value; throws when the key is wrong or the value was tampered with. */
export function open(sealed: string, key: Buffer): string {
  if (!sealed.startsWith('v1.')) throw new Error('unknown sealed value format')
  const raw = Buffer.from(sealed.slice(3), 'base64url')
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12))
  decipher.setAuthTag(raw.subarray(12, 28))
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
}
