import { sql } from 'kysely'
import { newId } from '../src/domain/ids.js'
import { assessContacts } from '../src/domain/lead.js'
import { fieldsFromLead, MAX_EMAILS, MAX_PHONES, matchable, unionContacts } from '../src/domain/merge.js'
import { foldName } from '../src/domain/names.js'
import { routeProspect } from '../src/domain/routing.js'
import type { LeadInput } from '../src/http/schemas/lead.js'
import { checkLead } from '../src/services/checking.js'
import { engineOf } from '../src/store/connect.js'
import type { Db, Tx } from '../src/store/database.js'
import type { Group } from '../src/store/groups.js'
import type { Integration } from '../src/store/integrations.js'
import { seededRandom } from '../test/jobs/people.js'

/**
 * The existing prospects of the scale benchmarks (scale, lookups, startup): N people of the bench
 * account, each stored as processing would have left them after their first lead: the prospect
 * row, its match keys in `prospect_keys` (active), and the lead, processed and pointing at it.
 * The rows are built here for speed (multi-row inserts, 25,000 prospects per transaction) but
 * every value comes from the code that processing runs: checkLead stores the lead, assessContacts
 * and matchable parse and key the contacts, unionContacts and fieldsFromLead shape the prospect,
 * routeProspect decides its status. Events and interactions are not written: no benchmark reads
 * them, and an undispatched outbox would set `serve` dispatching at start.
 *
 * People never collide with bench/leads.ts (generatePeopleLeads): their mobiles are in area codes
 * that module never uses, their emails carry `_<index>` (its never do), so the leads a benchmark
 * processes create new prospects beside these and the figures measure the effect of the index size.
 * Deterministic: person i is the same for a given seed, whatever N (ids and times follow the run).
 */

/** Brazilian area codes bench/leads.ts does not use (it uses 11 21 31 41 51 61 71 81 85 92). */
// biome-ignore format: a table
const DDDS = [
  '12', '13', '14', '15', '16', '17', '18', '19', '22', '24', '27', '28', '32', '33', '34', '35', '37',
  '38', '42', '43', '44', '45', '46', '47', '48', '49', '53', '54', '55', '62', '63', '64', '65', '66',
  '67', '68', '69', '73', '74', '75', '77', '79', '82', '83', '84', '86', '87', '88', '89', '91', '93',
  '94', '95', '96', '97', '98', '99',
]
// biome-ignore format: a table
const FIRST_NAMES = [
  'Ana', 'Antônio', 'Beatriz', 'Bruno', 'Camila', 'Carlos', 'Cecília', 'Daniel', 'Débora', 'Eduardo',
  'Fernanda', 'Felipe', 'Gabriel', 'Helena', 'Igor', 'Isabela', 'Júlia', 'José', 'Karina', 'Lucas',
  'Luíza', 'Marcos', 'Mariana', 'Natália', 'Otávio', 'Paula', 'Rafael', 'Renata', 'Sérgio', 'Tatiana',
  'Thiago', 'Vitória',
]
// biome-ignore format: a table
const LAST_NAMES = [
  'Silva', 'Santos', 'Oliveira', 'Souza', 'Rodrigues', 'Ferreira', 'Alves', 'Pereira', 'Lima', 'Gomes',
  'Costa', 'Ribeiro', 'Martins', 'Carvalho', 'Araújo', 'Melo', 'Barbosa', 'Rocha', 'Dias', 'Nascimento',
  'Andrade', 'Moreira', 'Nunes', 'Marques', 'Machado', 'Mendes', 'Freitas', 'Cardoso', 'Ramos', 'Gonçalves',
  'Teixeira', 'Conceição',
]
const DOMAINS = [
  ['gmail.com', 0.6],
  ['hotmail.com', 0.15],
  ['outlook.com', 0.1],
  ['yahoo.com.br', 0.08],
  ['uol.com.br', 0.07],
] as const
/** Mobiles per area code: 9, then 6–9, then 7 digits. */
const MOBILES_PER_DDD = 4e7
/** Landlines per area code: 2–5, then 7 digits. */
const LANDLINES_PER_DDD = 4e7
/** Multipliers coprime to 4e7 (2^9·5^7): index → number is a bijection, so numbers never repeat. */
const MOBILE_STEP = 2_654_435_761
const LANDLINE_STEP = 1_597_334_677
/** Existing prospects were created over this span, ending an hour before the run. */
export const HISTORY_MS = 400 * 24 * 3_600_000

export type PopulationPerson = {
  index: number
  firstName: string
  lastName: string
  /** Area code and the nine-digit mobile (9XXXXXXXX). */
  ddd: string
  mobile: string
  /** Eight-digit landline in the same area code, for one person in ten. */
  landline: string | null
  /** As the lead sent it (a lead source's format); null for the 40 % without one. */
  email: string | null
  /** The mobile as the lead sent it. */
  sentPhone: string
}

/** Person `index` of the population (pure: the same index and seed give the same person). */
export function populationPerson(index: number, seed = 7): PopulationPerson {
  // Seeded per person, so a person can be rebuilt without generating the ones before.
  const random = seededRandom(Math.imul(index + 1, 0x9e3779b1) ^ seed)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T
  const ddd = DDDS[index % DDDS.length] as string
  const slot = Math.floor(index / DDDS.length)
  const offset = BigInt((index % DDDS.length) * 1_234_567)
  const mobileNumber = Number((BigInt(slot) * BigInt(MOBILE_STEP) + offset) % BigInt(MOBILES_PER_DDD))
  const mobile = `9${6 + Math.floor(mobileNumber / 1e7)}${String(mobileNumber % 1e7).padStart(7, '0')}`
  const landlineNumber = Number((BigInt(slot) * BigInt(LANDLINE_STEP) + offset) % BigInt(LANDLINES_PER_DDD))
  const landline =
    random() < 0.1
      ? `${2 + Math.floor(landlineNumber / 1e7)}${String(landlineNumber % 1e7).padStart(7, '0')}`
      : null
  const firstName = pick(FIRST_NAMES)
  const lastName = pick(LAST_NAMES)
  const formats = [
    `+55 ${ddd} ${mobile.slice(0, 5)}-${mobile.slice(5)}`,
    `(${ddd}) ${mobile.slice(0, 5)}-${mobile.slice(5)}`,
    `55${ddd}${mobile}`,
    `55${ddd}${mobile.slice(1)}@s.whatsapp.net`,
  ]
  const sentPhone = pick(formats)
  let email: string | null = null
  if (random() < 0.6) {
    const [first, last] = [foldName(firstName), foldName(lastName)]
    const local = pick([`${first}.${last}`, `${first}${last}`, `${first[0]}${last}`, `${first}.${last[0]}`])
    let roll = random()
    let domain = 'gmail.com'
    for (const [name, share] of DOMAINS) {
      roll -= share
      if (roll < 0) {
        domain = name
        break
      }
    }
    email = `${local}_${index}@${domain}`
  }
  return { index, firstName, lastName, ddd, mobile, landline, email, sentPhone }
}

/** The lead that made person `index`'s prospect, as a lead source sent it. */
export function populationLead(person: PopulationPerson): LeadInput {
  return {
    utmSource: ['google', 'facebook', 'instagram', 'whatsapp', 'mercadolibre'][person.index % 5] as string,
    firstName: person.firstName,
    lastName: person.lastName,
    phones: [person.sentPhone, ...(person.landline ? [`(${person.ddd}) ${person.landline}`] : [])],
    ...(person.email ? { emails: [person.email] } : {}),
    comments: 'Tem disponível? Quero saber o preço à vista.',
    product: { make: 'Brastemp', model: 'BRM59', price: { amount: 4299.9, currency: 'brl' } },
  }
}

/** When person `index` of `count` became a prospect: evenly over HISTORY_MS, in index order. */
export function createdAtOf(index: number, count: number, now: number): number {
  return Math.floor(now - 3_600_000 - HISTORY_MS + (HISTORY_MS * index) / Math.max(count, 1))
}

export type PopulateOptions = {
  seed?: number
  /** The run's clock: prospects were created over the HISTORY_MS before it. */
  now?: number
  /** Called after each transaction with the number stored so far. */
  onProgress?: (stored: number) => void
}

const PER_TRANSACTION = 25_000
const PER_INSERT = 1_000

/**
 * Stores `count` prospects of `bench`'s account (see the module comment) and checks that they,
 * their keys and their leads are all there. Returns what it wrote.
 */
export async function populateProspects(
  db: Db,
  bench: { group: Group; integration: Integration },
  count: number,
  options: PopulateOptions = {},
): Promise<{ prospects: number; keys: number; leads: number; seconds: number }> {
  const started = performance.now()
  const now = options.now ?? Date.now()
  const { group, integration } = bench
  const sqlite = engineOf(db) === 'sqlite'
  // The indexes of a million prospects outgrow SQLite's 2 MB default page cache many times over;
  // a larger one for the load alone (put back after) keeps their pages in memory as rows go in.
  const previousCache = sqlite
    ? (await sql<{ cache_size: number }>`pragma cache_size`.execute(db)).rows[0]
    : null
  if (sqlite) await sql`pragma cache_size = -262144`.execute(db)
  const routing = routeProspect({
    hint: undefined,
    agents: [],
    working: [],
    distribution: group.distribution,
    turn: 0,
    loads: new Map(),
    withinOfficeHours: true,
    absenceMessage: group.absenceMessage,
  })
  let keyCount = 0
  try {
    for (let from = 0; from < count; from += PER_TRANSACTION) {
      const to = Math.min(count, from + PER_TRANSACTION)
      await db.transaction().execute(async (tx) => {
        for (let start = from; start < to; start += PER_INSERT) {
          const rows = buildRows(start, Math.min(to, start + PER_INSERT), count, now, {
            group,
            integration,
            routing,
            seed: options.seed ?? 7,
          })
          keyCount += rows.keys.length
          await insertRows(tx, rows)
        }
      })
      options.onProgress?.(to)
    }
  } finally {
    if (previousCache) await sql`pragma cache_size = ${sql.raw(String(previousCache.cache_size))}`.execute(db)
  }
  // A database that grew to this size over months has planner statistics (autovacuum analyses
  // as it goes); one filled in minutes has none yet, and its plans would be a bulk load's, not a
  // live system's.
  if (!sqlite) await sql`analyze`.execute(db)
  const counted = await db
    .selectFrom('prospects')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('accountId', '=', integration.accountId)
    .executeTakeFirstOrThrow()
  const keys = await db
    .selectFrom('prospectKeys')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('accountId', '=', integration.accountId)
    .where('active', '=', 1)
    .executeTakeFirstOrThrow()
  const leads = await db
    .selectFrom('leads')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('accountId', '=', integration.accountId)
    .where('status', '=', 'processed')
    .executeTakeFirstOrThrow()
  const stored = { prospects: Number(counted.n), keys: Number(keys.n), leads: Number(leads.n) }
  if (stored.prospects < count || stored.keys < keyCount || stored.leads < count)
    throw new Error(
      `population: wrote ${count} prospects and ${keyCount} keys, found ${JSON.stringify(stored)}`,
    )
  return { ...stored, seconds: (performance.now() - started) / 1000 }
}

function buildRows(
  from: number,
  to: number,
  count: number,
  now: number,
  ctx: { group: Group; integration: Integration; routing: ReturnType<typeof routeProspect>; seed: number },
) {
  const prospects = []
  const keys = []
  const leads = []
  for (let i = from; i < to; i++) {
    const at = createdAtOf(i, count, now)
    const checked = checkLead(populationLead(populationPerson(i, ctx.seed)), {
      integration: ctx.integration,
      group: ctx.group,
      industry: 'retail',
      blocked: new Set(),
      at,
    })
    if (!checked.ok)
      throw new Error(`population: person ${i} was refused: ${JSON.stringify(checked.refusal)}`)
    const lead = checked.lead
    const contacts = matchable(assessContacts(lead.body, ctx.group.countryCode, new Set()))
    const phones = unionContacts([], contacts.phones, MAX_PHONES)
    const emails = unionContacts([], contacts.emails, MAX_EMAILS)
    const fields = fieldsFromLead(lead.body)
    const id = newId(at)
    prospects.push({
      id,
      accountId: lead.accountId,
      groupId: ctx.group.id,
      initialGroupId: ctx.group.id,
      firstName: fields.firstName,
      lastName: fields.lastName,
      searchName: foldName(`${fields.firstName} ${fields.lastName}`),
      status: ctx.routing.status,
      category: lead.body.category as string,
      label: null,
      details: JSON.stringify(fields.details),
      phones: JSON.stringify(phones.contacts),
      emails: JSON.stringify(emails.contacts),
      additionalData: '{}',
      agentId: null,
      assignedAt: null,
      transferredAt: null,
      absenceMessage: ctx.routing.absenceMessage,
      archivingReason: null,
      userMade: 0,
      previousProspectId: null,
      mergedInto: null,
      // processing's `created` event numbers the prospect's first change
      sequence: 1,
      createdAt: at,
      updatedAt: at,
    })
    for (const c of phones.linked)
      keys.push({
        accountId: lead.accountId,
        keyType: 'phone' as const,
        keyValue: c.key,
        prospectId: id,
        active: 1,
      })
    for (const c of emails.linked)
      keys.push({
        accountId: lead.accountId,
        keyType: 'email' as const,
        keyValue: c.key,
        prospectId: id,
        active: 1,
      })
    leads.push({
      ...lead,
      status: 'processed' as const,
      processedAt: at,
      prospectId: id,
      merged: 0,
      error: null,
      body: JSON.stringify(lead.body),
      matchKeys: JSON.stringify(lead.matchKeys),
    })
  }
  return { prospects, keys, leads }
}

async function insertRows(tx: Tx, rows: ReturnType<typeof buildRows>): Promise<void> {
  await tx.insertInto('prospects').values(rows.prospects).execute()
  await tx.insertInto('leads').values(rows.leads).execute()
  // ~1.7 keys per prospect: two statements keep each under SQLite's 32,766 parameters.
  for (let i = 0; i < rows.keys.length; i += PER_INSERT)
    await tx
      .insertInto('prospectKeys')
      .values(rows.keys.slice(i, i + PER_INSERT))
      .execute()
}
