/** The scopes of api.md §1.2, with the labels the console shows. */
export const SCOPES = {
  'leads:write': 'Leads',
  'prospects:read': 'Read endpoints',
  'prospects:readAdditionalData': 'Additional data',
  'prospects:write': 'Write endpoints',
  notifications: 'Webhooks',
  'messages:channels': 'Channels',
  'messages:conversational': 'Conversational messages',
  'messages:transactional': 'Transactional messages',
  'integration:act-as-user': 'Act on behalf of a user',
} as const

export type Scope = keyof typeof SCOPES

export const ALL_SCOPES = Object.keys(SCOPES) as Scope[]

export function isScope(value: string): value is Scope {
  return Object.hasOwn(SCOPES, value)
}

/**
 * The `providerKey` the original product gives an API integration: `api.` followed by its scopes
 * joined with `_` (e.g. `api.leads:write_prospects:read`). Scopes keep the order of SCOPES so the
 * key does not depend on the order they were chosen in.
 */
export function providerKeyOf(scopes: readonly Scope[]): string {
  return `api.${ALL_SCOPES.filter((s) => scopes.includes(s)).join('_')}`
}
