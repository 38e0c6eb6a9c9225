import type { Result } from '../src/domain/result.js'
import { ALL_SCOPES } from '../src/domain/scopes.js'
import type { LeadInput } from '../src/http/schemas/lead.js'
import { createIntegration, revokeIntegration } from '../src/services/access.js'
import { checkLead } from '../src/services/checking.js'
import { createAccount, createGroup, createUser } from '../src/services/directory.js'
import { storeLeads } from '../src/services/intake.js'
import { processLead } from '../src/services/processing.js'
import { subscribe } from '../src/services/subscriptions.js'
import type { Db } from '../src/store/database.js'
import type { Group } from '../src/store/groups.js'
import type { Integration } from '../src/store/integrations.js'
import { dispatchEvents } from '../src/webhooks/dispatcher.js'

function must<T>(result: Result<T>): T {
  if (!result.ok) throw new Error(`seed failed: ${result.message}`)
  return result.value
}

/**
 * Two accounts the tests can rely on:
 * - A, "Autos del Sur" (AR): root → Norte → Desk ML, and root → Oeste; agents in Norte, Desk ML
 *   and Oeste; an administrator at the root; keys: all scopes at the root, all scopes at Norte,
 *   leads:write only at the root, and a revoked one.
 * - B, "Loja Azul" (BR): its root group, one agent, one all-scopes key.
 */
export async function seed(db: Db, secretKey: Buffer) {
  const a = must(await createAccount(db, { name: 'Autos del Sur', countryCode: 'AR' }))
  const norte = must(await createGroup(db, a.account.id, { name: 'Sucursal Norte', parentId: a.group.id }))
  const desk = must(
    await createGroup(db, a.account.id, {
      name: 'Desk Mercado Libre',
      parentId: norte.id,
      type: ['marketplace'],
    }),
  )
  const oeste = must(
    await createGroup(db, a.account.id, {
      name: 'Sucursal Oeste',
      parentId: a.group.id,
      timezone: 'America/Mexico_City',
      officeHours: { monday: [{ from: '09:00', to: '18:00' }] },
    }),
  )
  const user = async (
    accountId: string,
    email: string,
    groupIds: string[],
    extra: { working?: boolean; profile?: 'agent' | 'administrator' } = {},
  ) =>
    must(
      await createUser(db, accountId, {
        email,
        firstName: email.split('@')[0] ?? 'x',
        lastName: 'Test',
        profile: extra.profile ?? 'agent',
        groupIds,
        password: 'correct horse battery staple',
        working: extra.working ?? false,
      }),
    ).user
  const ana = await user(a.account.id, 'ana@autosdelsur.com.ar', [norte.id], { working: true })
  const beto = await user(a.account.id, 'beto@autosdelsur.com.ar', [desk.id])
  const carla = await user(a.account.id, 'carla@autosdelsur.com.ar', [oeste.id], { working: true })
  const admin = await user(a.account.id, 'admin@autosdelsur.com.ar', [a.group.id], {
    profile: 'administrator',
  })
  const key = async (accountId: string, groupId: string, name: string, scopes: string[]) =>
    must(await createIntegration(db, secretKey, { accountId, groupId, name, scopes }, 'test'))
  const all = await key(a.account.id, a.group.id, 'Web forms', ALL_SCOPES)
  const norteKey = await key(a.account.id, norte.id, 'Norte CRM', ALL_SCOPES)
  const leadsOnly = await key(a.account.id, a.group.id, 'Landing page', ['leads:write'])
  const readOnly = await key(a.account.id, a.group.id, 'Dashboard', ['prospects:read'])
  const revoked = await key(a.account.id, a.group.id, 'Old site', ALL_SCOPES)
  must(await revokeIntegration(db, revoked.integration.id, 'test'))

  // The root listens to webhooks (the URL is never called: no test here runs a sender on it).
  const subscription = await subscribe(
    db,
    all.integration,
    {
      topics: ['prospects', 'interactions', 'leads'],
      callbackUrl: 'https://93.184.216.34/ventas?token=seed',
    },
    secretKey,
    Date.now(),
  )

  const ingested = await ingest(db, all.integration, norte, {
    utmSource: 'seed',
    firstName: 'Juan',
    lastName: 'Pérez',
    phones: ['011 15-4552-0371'],
    history: [{ type: 'note', content: 'Llamar después de las 18' }],
  })
  const note = await db
    .selectFrom('interactions')
    .select('id')
    .where('leadId', '=', ingested.id)
    .executeTakeFirstOrThrow()
  const lead = { ...ingested, interactionId: note.id }
  await dispatchEvents(db, Date.now())
  const delivery = await db
    .selectFrom('deliveries')
    .select('id')
    .where('subscriptionId', '=', subscription.id)
    .executeTakeFirstOrThrow()

  const b = must(await createAccount(db, { name: 'Loja Azul', countryCode: 'BR' }))
  const bAgent = await user(b.account.id, 'rita@lojaazul.com.br', [b.group.id], { working: true })
  const bKey = await key(b.account.id, b.group.id, 'Loja site', ALL_SCOPES)

  return {
    a: {
      account: a.account,
      root: a.group,
      norte,
      desk,
      oeste,
      agents: { ana, beto, carla },
      admin,
      lead,
      subscription,
      deliveryId: delivery.id,
    },
    b: { account: b.account, root: b.group, agent: bAgent },
    keys: {
      all: all.key,
      norte: norteKey.key,
      leadsOnly: leadsOnly.key,
      readOnly: readOnly.key,
      revoked: revoked.key,
      otherAccount: bKey.key,
    },
    integrations: { all: all.integration, norte: norteKey.integration, revoked: revoked.integration },
  }
}

export type Seed = Awaited<ReturnType<typeof seed>>

/**
 * Accepts and processes one retail lead through the real intake and processing services, as the
 * v1 route does; returns the processed lead. `group` only names the group the lead is checked
 * against (the integration's own group is where it lands).
 */
export async function ingest(
  db: Db,
  integration: Integration,
  group: Group,
  input: LeadInput,
  at = Date.now(),
) {
  const checked = checkLead(input, { integration, group, industry: 'retail', blocked: new Set(), at })
  if (!checked.ok) throw new Error(`seed lead refused: ${JSON.stringify(checked.refusal)}`)
  const stored = await storeLeads(db, [checked.lead], { at })
  if (!stored.ok) throw new Error('seed lead not stored')
  const result = await processLead(db, checked.lead.id, () => at)
  if (result.status !== 'processed') throw new Error(`seed lead not processed: ${JSON.stringify(result)}`)
  return { id: result.leadId, prospectId: result.prospectId }
}
