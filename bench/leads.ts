import type { LeadInput } from '../src/http/schemas/lead.js'
import { seededRandom } from '../test/jobs/people.js'

/**
 * Realistic Brazilian leads for load: mobile phones in the formats people and integrations
 * actually send (with and without the ninth digit, WhatsApp ids, 00-prefixed), Gmail addresses
 * with dots and tags, and a share of leads that belong to a person seen before.
 * Deterministic (a seeded PRNG), so runs compare.
 */
export function generateLeads(count: number, repeatShare: number, seed = 42): LeadInput[] {
  return generatePeopleLeads(count, repeatShare, seed).leads
}

/** The leads and how many distinct people they belong to (what the prospect count must be). */
export function generatePeopleLeads(
  count: number,
  repeatShare: number,
  seed = 42,
): { leads: LeadInput[]; people: number } {
  const random = seededRandom(seed)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T
  const names = [
    'Ana',
    'Bruno',
    'Carla',
    'Diego',
    'Elisa',
    'Fábio',
    'Gabriela',
    'Hugo',
    'Íris',
    'João',
    'Larissa',
    'Mateus',
  ]
  const surnames = [
    'Silva',
    'Souza',
    'Oliveira',
    'Santos',
    'Pereira',
    'Lima',
    'Carvalho',
    'Gomes',
    'Ribeiro',
    'Almeida',
  ]
  const ddds = ['11', '21', '31', '41', '51', '61', '71', '81', '85', '92']
  const formats = [
    (d: string, n: string) => `+55 ${d} 9${n.slice(0, 4)}-${n.slice(4)}`,
    (d: string, n: string) => `(${d}) 9${n.slice(0, 4)}-${n.slice(4)}`,
    (d: string, n: string) => `55${d}9${n}`,
    (d: string, n: string) => `0055 ${d} 9${n}`,
    (d: string, n: string) => `55${d}${n}@s.whatsapp.net`,
    (d: string, n: string) => `+55 ${d} ${n.slice(0, 4)}-${n.slice(4)}`,
  ]
  const people: { first: string; last: string; ddd: string; number: string }[] = []
  const leads: LeadInput[] = []
  for (let i = 0; i < count; i++) {
    const returning = people.length > 0 && random() < repeatShare
    const person = returning
      ? pick(people)
      : {
          first: pick(names),
          last: pick(surnames),
          ddd: pick(ddds),
          number: `${6 + Math.floor(random() * 4)}${String(Math.floor(random() * 1e7)).padStart(7, '0')}`,
        }
    if (!returning) people.push(person)
    const email = `${person.first
      .toLowerCase()
      .normalize('NFD')
      .replace(/\p{Diacritic}/gu, '')}.${person.last.toLowerCase()}${person.number.slice(-4)}@gmail.com`
    leads.push({
      utmSource: pick(['google', 'facebook', 'instagram', 'whatsapp', 'mercadolibre']),
      firstName: person.first,
      lastName: person.last,
      phones: [pick(formats)(person.ddd, person.number)],
      ...(random() < 0.6 ? { emails: [random() < 0.5 ? email : email.replace('.', '')] } : {}),
      comments: 'Tem disponível? Quero saber o preço à vista.',
      product: { make: 'Brastemp', model: 'BRM59', price: { amount: 4299.9, currency: 'brl' } },
    })
  }
  return { leads, people: people.length }
}
