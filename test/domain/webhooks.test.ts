import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Webhook } from 'standardwebhooks'
import {
  judgeAttempt,
  nextWebhookAttempt,
  parseRetryAfter,
  WEBHOOK_GIVE_UP_MS,
  WEBHOOK_MAX_ATTEMPTS,
} from '../../src/domain/retry.js'
import { generateWebhookSecret, signatureHeader, signWebhook } from '../../src/domain/signature.js'
import { forbiddenAddress } from '../../src/domain/ssrf.js'

describe('webhook signatures (Standard Webhooks v1)', () => {
  const body = JSON.stringify({
    topic: 'leads',
    type: 'processed',
    lead: { id: '6745a1f0c2b4e5d6a7b8c9d0' },
    nome: 'João',
  })
  const timestamp = Math.floor(Date.now() / 1000)

  test('an independent implementation (the standardwebhooks package) verifies what we sign', () => {
    const secret = generateWebhookSecret()
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/)
    const headers = {
      'webhook-id': 'evt_1',
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signatureHeader([secret], 'evt_1', timestamp, body),
    }
    assert.deepEqual(new Webhook(secret).verify(body, headers), JSON.parse(body))
    assert.throws(() => new Webhook(secret).verify(`${body} `, headers), 'one byte more fails')
    assert.throws(() => new Webhook(generateWebhookSecret()).verify(body, headers), 'another secret fails')
  })

  test('during a rotation both secrets sign, and a receiver holding either verifies', () => {
    const [old, fresh] = [generateWebhookSecret(), generateWebhookSecret()]
    const header = signatureHeader([fresh, old], 'evt_2', timestamp, body)
    assert.equal(header.split(' ').length, 2)
    for (const secret of [old, fresh]) {
      const headers = {
        'webhook-id': 'evt_2',
        'webhook-timestamp': String(timestamp),
        'webhook-signature': header,
      }
      assert.ok(new Webhook(secret).verify(body, headers))
    }
  })

  test('the exact bytes are signed: a Buffer and its string sign alike', () => {
    const secret = generateWebhookSecret()
    assert.equal(signWebhook(secret, 'x', 1, Buffer.from(body)), signWebhook(secret, 'x', 1, body))
  })
})

describe('webhook retry schedule', () => {
  const now = Date.parse('2026-11-25T00:00:00Z')
  const expected = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]

  test('attempts 2…8 follow 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h within ±20 %; there is no 9th', () => {
    assert.equal(WEBHOOK_MAX_ATTEMPTS, 8)
    expected.forEach((delay, i) => {
      assert.equal(
        nextWebhookAttempt(i + 2, now, null, () => 0),
        now + delay * 0.8,
      )
      assert.equal(
        nextWebhookAttempt(i + 2, now, null, () => 1),
        now + delay * 1.2,
      )
      assert.equal(
        nextWebhookAttempt(i + 2, now, null, () => 0.5),
        now + delay,
      )
    })
    assert.equal(nextWebhookAttempt(9, now), null)
  })

  test('Retry-After is honoured when it asks for longer, up to 24 h', () => {
    assert.equal(
      nextWebhookAttempt(2, now, 120_000, () => 0.5),
      now + 120_000,
    )
    assert.equal(
      nextWebhookAttempt(4, now, 120_000, () => 0.5),
      now + 1_800_000,
      'the schedule wins when longer',
    )
    assert.equal(
      nextWebhookAttempt(2, now, 7 * 24 * 3_600_000, () => 0.5),
      now + 24 * 3_600_000,
    )
    assert.equal(parseRetryAfter('120', now), 120_000)
    assert.equal(parseRetryAfter(new Date(now + 60_000).toUTCString(), now), 60_000)
    assert.equal(parseRetryAfter('soon', now), null)
    assert.equal(parseRetryAfter(undefined, now), null)
  })
})

describe('SSRF address rules', () => {
  const refused = [
    '127.0.0.1',
    '127.1.2.3',
    '::1',
    '10.0.0.1',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    'fd00::1',
    'fd00:ec2::254',
    'fe80::1',
    '::ffff:127.0.0.1',
    '::ffff:8.8.8.8',
    '0.0.0.0',
    '::',
    '100.64.0.1',
    '224.0.0.1',
    '[::1]',
    'localhost',
    'example.com',
  ]
  const allowed = [
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '200.147.67.142',
    '2800:3f0:4001:80a::200e',
    '2001:4860:4860::8888',
  ]

  for (const address of refused) test(`${address} is refused`, () => assert.ok(forbiddenAddress(address)))
  for (const address of allowed)
    test(`${address} is allowed`, () => assert.equal(forbiddenAddress(address), null))

  test('a decimal IPv4 host is caught once the URL parser has normalised it', () => {
    assert.equal(new URL('http://2130706433/').hostname, '127.0.0.1')
    assert.ok(forbiddenAddress(new URL('http://2130706433/').hostname))
  })
})

describe('what one attempt means (judgeAttempt)', () => {
  const now = Date.parse('2026-11-25T12:00:00Z')
  const fixed = () => 0.5 // no jitter
  const judge = (number: number, statusCode: number | null, retryAfter: string | null = null, since = now) =>
    judgeAttempt({ number, statusCode, retryAfter }, now, since, fixed)

  test('2xx delivers; anything else schedules the next attempt by the table', () => {
    assert.deepEqual(judge(1, 204), { status: 'delivered', nextAttemptAt: null, deactivate: null })
    for (const statusCode of [null, 301, 400, 404, 500, 502]) {
      assert.deepEqual(judge(1, statusCode), {
        status: 'pending',
        nextAttemptAt: now + 5_000,
        deactivate: null,
      })
    }
    assert.equal(judge(2, 500).nextAttemptAt, now + 5 * 60_000)
    assert.equal(judge(7, 500).nextAttemptAt, now + 10 * 3_600_000)
  })

  test('the eighth failure fails the delivery and leaves the subscription alone', () => {
    assert.deepEqual(judge(8, 500), { status: 'failed', nextAttemptAt: null, deactivate: null })
  })

  test('410 fails the delivery and deactivates at once', () => {
    const verdict = judge(1, 410)
    assert.equal(verdict.status, 'failed')
    assert.match(verdict.deactivate ?? '', /410 Gone/)
  })

  test('Retry-After counts on 429 and 503 only', () => {
    assert.equal(judge(1, 429, '120').nextAttemptAt, now + 120_000)
    assert.equal(judge(1, 503, new Date(now + 600_000).toUTCString()).nextAttemptAt, now + 600_000)
    assert.equal(judge(1, 500, '120').nextAttemptAt, now + 5_000, 'a 500 with Retry-After keeps the table')
    assert.equal(judge(1, 429, '999999').nextAttemptAt, now + 24 * 3_600_000, 'capped at 24 h')
  })

  test('five days of unbroken failure deactivates, with when it began', () => {
    const since = now - WEBHOOK_GIVE_UP_MS
    const verdict = judge(2, 500, null, since)
    assert.equal(verdict.status, 'failed')
    assert.match(verdict.deactivate ?? '', /5 days, since 2026-11-20T12:00:00.000Z/)
    assert.equal(judge(2, 500, null, since + 1).deactivate, null, 'a millisecond short is not five days')
    assert.equal(judge(2, 200, null, since).deactivate, null, 'a success is never a reason')
  })
})
