import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import { generateApiKey, hashApiKey, maskApiKey } from '../../src/domain/api-key.js'
import { idAt, isObjectId, newId } from '../../src/domain/ids.js'
import { isWithinOfficeHours, localTime } from '../../src/domain/office-hours.js'
import { generatePassword, hashPassword, verifyPassword } from '../../src/domain/password.js'
import { isWorking } from '../../src/domain/presence.js'
import { ALL_SCOPES, providerKeyOf } from '../../src/domain/scopes.js'
import { open, seal } from '../../src/domain/secret-box.js'

describe('ids', () => {
  test('are 24-hex, unique, and ordered by creation', () => {
    const ids = Array.from({ length: 2000 }, () => newId())
    assert.ok(ids.every(isObjectId))
    assert.equal(new Set(ids).size, ids.length)
    assert.deepEqual([...ids].sort(), ids)
  })

  test('carry their second, so a date becomes a cursor', () => {
    const at = Date.parse('2026-11-24T12:00:00Z')
    const id = newId(at)
    assert.ok(idAt(at) <= id && id < idAt(at + 1000))
    assert.equal(isObjectId('6745A1F0C2B4E5D6A7B8C9D0'), false)
    assert.equal(isObjectId('6745a1f0c2b4e5d6a7b8c9d'), false)
  })
})

describe('api keys and sealing', () => {
  test('keys carry 256 bits, hash deterministically, and mask without revealing', () => {
    const key = generateApiKey()
    assert.match(key, /^vk_[A-Za-z0-9_-]{43}$/)
    assert.notEqual(generateApiKey(), key)
    assert.equal(hashApiKey(key), hashApiKey(key))
    assert.match(hashApiKey(key), /^[0-9a-f]{64}$/)
    assert.equal(maskApiKey(key), `vk_…${key.slice(-4)}`)
  })

  test('seal and open round-trip; a wrong key or a tampered value fails', () => {
    const secret = randomBytes(32)
    const sealed = seal('vk_example', secret)
    assert.ok(!sealed.includes('vk_example'))
    assert.notEqual(seal('vk_example', secret), sealed) // fresh IV each time
    assert.equal(open(sealed, secret), 'vk_example')
    assert.throws(() => open(sealed, randomBytes(32)))
    const raw = Buffer.from(sealed.slice(3), 'base64url')
    raw.writeUInt8(raw.readUInt8(raw.length - 1) ^ 1, raw.length - 1) // one bit of the ciphertext
    assert.throws(() => open(`v1.${raw.toString('base64url')}`, secret))
  })
})

describe('passwords', () => {
  test('scrypt hashes verify the right password only', async () => {
    const password = generatePassword()
    assert.equal(password.length, 18)
    const stored = await hashPassword(password)
    assert.ok(stored.startsWith('scrypt$'))
    assert.equal(await verifyPassword(password, stored), true)
    assert.equal(await verifyPassword(`${password}x`, stored), false)
    assert.equal(await verifyPassword(password, 'md5$nope'), false)
  })
})

describe('scopes', () => {
  test('providerKey is api. + scopes joined with _, in canonical order whatever the input order', () => {
    assert.equal(providerKeyOf(['prospects:read', 'leads:write']), 'api.leads:write_prospects:read')
    assert.equal(providerKeyOf(ALL_SCOPES), `api.${ALL_SCOPES.join('_')}`)
  })
})

describe('office hours', () => {
  const weekdays = { monday: [{ from: '09:00', to: '18:00' }], friday: [{ from: '22:00', to: '06:00' }] }

  test('local time follows the zone, including its offset', () => {
    assert.deepEqual(localTime(new Date('2026-11-23T12:30:00Z'), 'America/Sao_Paulo'), {
      day: 1,
      minutes: 9 * 60 + 30,
    })
    assert.deepEqual(localTime(new Date('2026-11-23T02:00:00Z'), 'America/Mexico_City'), {
      day: 0,
      minutes: 20 * 60,
    })
  })

  test('null means always open; an absent weekday is closed', () => {
    assert.equal(isWithinOfficeHours(null, 'UTC', new Date('2026-11-22T03:00:00Z')), true)
    assert.equal(isWithinOfficeHours(weekdays, 'UTC', new Date('2026-11-24T10:00:00Z')), false) // Tuesday
  })

  test('ranges include their start and exclude their end', () => {
    assert.equal(isWithinOfficeHours(weekdays, 'UTC', new Date('2026-11-23T09:00:00Z')), true)
    assert.equal(isWithinOfficeHours(weekdays, 'UTC', new Date('2026-11-23T08:59:00Z')), false)
    assert.equal(isWithinOfficeHours(weekdays, 'UTC', new Date('2026-11-23T18:00:00Z')), false)
  })

  test('the same instant is open in one zone and closed in another', () => {
    const at = new Date('2026-11-23T20:00:00Z') // Monday 17:00 in São Paulo, 14:00 in Mexico City, 20:00 UTC
    assert.equal(isWithinOfficeHours(weekdays, 'America/Sao_Paulo', at), true)
    assert.equal(isWithinOfficeHours(weekdays, 'UTC', at), false)
  })

  test('an overnight range runs into the next morning', () => {
    assert.equal(isWithinOfficeHours(weekdays, 'UTC', new Date('2026-11-27T23:00:00Z')), true) // Friday 23:00
    assert.equal(isWithinOfficeHours(weekdays, 'UTC', new Date('2026-11-28T05:59:00Z')), true) // Saturday 05:59
    assert.equal(isWithinOfficeHours(weekdays, 'UTC', new Date('2026-11-28T06:00:00Z')), false)
  })
})

describe('presence', () => {
  const open = { officeHours: null, timezone: 'UTC' }
  const closed = { officeHours: {}, timezone: 'UTC' }
  const now = new Date()

  test('working needs active, the working flag and one open group', () => {
    assert.equal(isWorking({ active: true, working: true }, [closed, open], now), true)
    assert.equal(isWorking({ active: true, working: true }, [closed], now), false)
    assert.equal(isWorking({ active: true, working: false }, [open], now), false)
    assert.equal(isWorking({ active: false, working: true }, [open], now), false)
    assert.equal(isWorking({ active: true, working: true }, [], now), false)
  })
})
