import { createHmac, randomBytes } from 'node:crypto'

/**
 * Standard Webhooks v1 signing (webhooks.md §3): the secret is `whsec_` + base64 of 32 random
 * bytes; a signature is `v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the decoded
 * secret, computed over the exact bytes sent. During a rotation both secrets sign, and the header
 * lists both signatures separated by a space, so receivers accept either.
 */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`
}

export function signWebhook(secret: string, id: string, timestamp: number, body: string | Buffer): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64')
  const hmac = createHmac('sha256', key)
  hmac.update(`${id}.${timestamp}.`)
  hmac.update(body)
  return `v1,${hmac.digest('base64')}`
}

/** The `webhook-signature` header value: one signature per valid secret. */
export function signatureHeader(
  secrets: readonly string[],
  id: string,
  timestamp: number,
  body: string | Buffer,
): string {
  return secrets.map((secret) => signWebhook(secret, id, timestamp, body)).join(' ')
}
