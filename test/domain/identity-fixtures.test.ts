import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { parseEmail } from '../../src/domain/email.js'
import { parsePhone } from '../../src/domain/phone.js'

const fixtures = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../../shared/fixtures/${name}`, import.meta.url), 'utf8')).cases

/**
 * ../shared/fixtures/phones.json and emails.json in full: each stored form, and the rule that
 * entries of one person share one key while entries of different people never do.
 */
function checkKeys(
  cases: { input: string; person?: string }[],
  keyOf: (c: { input: string }) => string | null,
) {
  const byKey = new Map<string, Set<string>>()
  const byPerson = new Map<string, Set<string | null>>()
  for (const c of cases.filter((c) => c.person)) {
    const key = keyOf(c)
    byPerson.set(c.person as string, (byPerson.get(c.person as string) ?? new Set()).add(key))
    if (key) byKey.set(key, (byKey.get(key) ?? new Set()).add(c.person as string))
  }
  for (const [person, keys] of byPerson)
    assert.equal(keys.size, 1, `${person} has one key: ${[...keys].join(', ')}`)
  for (const [key, people] of byKey)
    assert.equal(people.size, 1, `${key} belongs to one person: ${[...people].join(', ')}`)
}

describe('phones.json', () => {
  const cases = fixtures('phones.json') as {
    input: string
    country: string
    e164: string | null
    person?: string
  }[]
  for (const c of cases) {
    test(`${JSON.stringify(c.input)} under ${c.country} → ${c.e164}`, () => {
      const phone = parsePhone(c.input, c.country)
      assert.equal(phone.e164, c.e164)
      assert.equal(phone.raw, c.input)
      if (c.e164 === null) {
        assert.equal(phone.key, null)
        assert.ok(phone.problem, 'an unusable phone says why')
      }
    })
  }
  test('one person, one key; two people, never one key', () =>
    checkKeys(cases, (c) => parsePhone(c.input, (c as (typeof cases)[0]).country).key))
})

describe('emails.json', () => {
  const cases = fixtures('emails.json') as { input: string; stored: string | null; person?: string }[]
  for (const c of cases) {
    test(`${JSON.stringify(c.input)} → ${c.stored}`, () => {
      const email = parseEmail(c.input)
      assert.equal(email.stored, c.stored)
      if (c.stored === null) assert.equal(email.key, null)
    })
  }
  test('one person, one key; two people, never one key', () =>
    checkKeys(cases, (c) => parseEmail(c.input).key))
})
