import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { ConfigError, loadConfig, loadSecretKey } from '../../src/config.js'

describe('configuration', () => {
  test('an empty environment gives the documented defaults', () => {
    const config = loadConfig({})
    assert.equal(config.port, 8080)
    assert.equal(config.host, '127.0.0.1')
    assert.equal(config.storage.engine, 'sqlite')
    assert.ok(config.storage.engine === 'sqlite' && config.storage.path.endsWith(join('data', 'ventas.db')))
    assert.equal(config.bootstrap, true)
    assert.equal(config.defaultCountry, 'BR')
    assert.equal(config.webhookAllowPrivate, false)
    assert.deepEqual(config.rateLimit, { perSecond: 100, burst: 200 })
    assert.equal(config.redisUrl, null)
    assert.equal(config.sqliteSynchronous, 'FULL')
    assert.equal(config.secretKey, null)
    assert.equal(config.webhookTimeoutMs, 15000)
    assert.equal(config.webhookConcurrency, 64)
  })

  test('values are parsed and normalised', () => {
    const config = loadConfig({
      PORT: '9000',
      DATABASE_URL: 'postgres://u@h/db',
      VENTAS_DEFAULT_COUNTRY: 'ar',
      VENTAS_RATE_LIMIT: '10',
      VENTAS_BOOTSTRAP: 'false',
      VENTAS_SQLITE_SYNCHRONOUS: 'normal',
      VENTAS_SECRET_KEY: Buffer.alloc(32, 7).toString('base64'),
      VENTAS_WEBHOOK_TIMEOUT_MS: '2000',
      VENTAS_WEBHOOK_CONCURRENCY: '16',
      VENTAS_WEBHOOK_RETENTION_DAYS: '7:14',
    })
    assert.equal(config.port, 9000)
    assert.deepEqual(config.storage, { engine: 'postgres', url: 'postgres://u@h/db' })
    assert.equal(config.defaultCountry, 'AR')
    assert.deepEqual(config.rateLimit, { perSecond: 10, burst: 20 })
    assert.equal(config.bootstrap, false)
    assert.equal(config.sqliteSynchronous, 'NORMAL')
    assert.deepEqual(config.secretKey, Buffer.alloc(32, 7))
    assert.equal(config.webhookTimeoutMs, 2000)
    assert.equal(config.webhookConcurrency, 16)
    assert.deepEqual(config.webhookRetention, { deliveredDays: 7, failedDays: 14 })
  })

  const bad: [string, string][] = [
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://x'],
    ['VENTAS_SECRET_KEY', 'tooshort'],
    ['VENTAS_BOOTSTRAP', 'perhaps'],
    ['VENTAS_DEFAULT_COUNTRY', 'Brazil'],
    ['VENTAS_RATE_LIMIT', 'fast'],
    ['VENTAS_RATE_LIMIT', '100:50'],
    ['REDIS_URL', 'localhost:6379'],
    ['LOG_LEVEL', 'loud'],
    ['VENTAS_SQLITE_SYNCHRONOUS', 'OFF'],
    ['VENTAS_WORKER_LEASE_MS', '50'],
    ['VENTAS_WEBHOOK_TIMEOUT_MS', '90000'],
    ['VENTAS_WEBHOOK_CONCURRENCY', '0'],
    ['VENTAS_WEBHOOK_CONCURRENCY', '257'],
    ['VENTAS_WEBHOOK_CONCURRENCY', 'many'],
    ['VENTAS_WEBHOOK_RETENTION_DAYS', '30'],
    ['VENTAS_WEBHOOK_RETENTION_DAYS', '0:90'],
  ]
  for (const [variable, value] of bad) {
    test(`${variable}=${value} stops the start with a message naming ${variable}`, () => {
      assert.throws(
        () => loadConfig({ [variable]: value }),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.variable === variable &&
          error.message.startsWith(`${variable}:`),
      )
    })
  }

  test('a bad secret key is never echoed back', () => {
    assert.throws(
      () => loadConfig({ VENTAS_SECRET_KEY: 'my-secret-value' }),
      (error: Error) => !error.message.includes('my-secret-value'),
    )
  })

  test('SQLite generates secret.key beside the database, mode 0600, once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ventas-config-'))
    const config = loadConfig({ DATABASE_URL: `sqlite:${join(dir, 'v.db')}` })
    const key = loadSecretKey(config)
    assert.equal(key.length, 32)
    const path = join(dir, 'secret.key')
    assert.equal(statSync(path).mode & 0o777, 0o600)
    assert.deepEqual(loadSecretKey(config), key)
    assert.match(readFileSync(path, 'utf8'), /^[0-9a-f]{64}\n$/)
  })

  test('PostgreSQL requires VENTAS_SECRET_KEY', () => {
    assert.throws(
      () => loadSecretKey(loadConfig({ DATABASE_URL: 'postgres://u@h/db' })),
      (error: unknown) => error instanceof ConfigError && error.variable === 'VENTAS_SECRET_KEY',
    )
  })
})
