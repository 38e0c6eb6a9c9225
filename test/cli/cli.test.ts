import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { loadConfig } from '../../src/config.js'
import { verifyPassword } from '../../src/domain/password.js'
import { connect } from '../../src/store/connect.js'
import { findUserByEmail } from '../../src/store/users.js'
import { createTestDatabase, ENGINE, type TestDatabase } from '../helper.js'

/** The real `ventas` program (operations.md §6) as a child process, on a database of its own. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const execFileAsync = promisify(execFile)
const UNKNOWN_ID = '000000000000000000000000'

type Run = { code: number; stdout: string; stderr: string }
// biome-ignore lint/suspicious/noExplicitAny: each command's JSON shape is what the tests check
type Json = any
type Env = Record<string, string>
type Reply = Run & { body: Json }

async function ventas(db: TestDatabase, args: string[], env: Env = {}): Promise<Run> {
  const options = { cwd: ROOT, env: { ...process.env, ...db.env, LOG_LEVEL: 'silent', ...env } }
  try {
    const cli = ['--import', 'tsx', 'src/cli/main.ts', ...args]
    const { stdout, stderr } = await execFileAsync(process.execPath, cli, options)
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as Partial<Run>
    if (typeof failed.code !== 'number') throw error
    return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' }
  }
}

async function json(db: TestDatabase, args: string[], env: Env = {}): Promise<Reply> {
  const result = await ventas(db, [...args, '--json'], env)
  return { ...result, body: JSON.parse(result.stdout) }
}

/** A refusal: exit 1 and `{"error":{code, message}}` on stdout. */
function assertRefused(result: Reply, code: string, message?: RegExp): void {
  assert.equal(result.code, 1, result.stdout)
  assert.equal(result.body.error.code, code)
  if (message) assert.match(result.body.error.message, message)
}

function freshDatabase(): { db: TestDatabase } {
  const fresh = {} as { db: TestDatabase }
  before(async () => {
    fresh.db = await createTestDatabase()
  })
  after(() => fresh.db?.drop())
  return fresh
}

describe(`ventas accounts, groups and users (${ENGINE})`, () => {
  const fresh = freshDatabase()
  let account: { id: string; settings: { webhookFanOut?: boolean } }
  let root: { id: string; timezone: string }
  const groupsCreate = (...args: string[]) =>
    json(fresh.db, ['groups', 'create', '--account', account.id, '--name', 'G', ...args])

  test('accounts create makes an account and its root group, in the default country', async () => {
    const { code, body } = await json(fresh.db, ['accounts', 'create', '--name', 'Acme'])
    assert.equal(code, 0)
    account = body.account
    root = body.rootGroup
    assert.deepEqual(
      [body.account.name, body.account.countryCode, root.timezone],
      ['Acme', 'BR', 'America/Sao_Paulo'],
    )
    assert.deepEqual([body.rootGroup.accountId, body.rootGroup.parentId], [account.id, null])
    const [ar, mx] = await Promise.all([
      json(fresh.db, ['accounts', 'create', '--name', 'Sur', '--country', 'ar']),
      json(fresh.db, ['accounts', 'create', '--name', 'Norte'], { VENTAS_DEFAULT_COUNTRY: 'mx' }),
    ])
    assert.equal(ar.body.account.countryCode, 'AR')
    assert.equal(ar.body.rootGroup.timezone, 'America/Argentina/Buenos_Aires')
    assert.equal(mx.body.account.countryCode, 'MX')
  })

  test('accounts create refuses a country that is not a two-letter code, naming the field', async () => {
    const args = ['accounts', 'create', '--name', 'X', '--country', 'Brazil']
    const [refused, text] = await Promise.all([json(fresh.db, args), ventas(fresh.db, args)])
    assertRefused(refused, 'INVALID', /^country: "Brazil"/)
    assert.equal(text.code, 1)
    assert.match(text.stderr, /^ventas: country: "Brazil"/)
  })

  test('webhook fan-out is an account setting: set at creation, changed with accounts update', async () => {
    const created = await json(fresh.db, ['accounts', 'create', '--name', 'Fan', '--webhook-fan-out'])
    assert.equal(created.body.account.settings.webhookFanOut, true)
    assert.equal(account.settings.webhookFanOut, false, 'off unless asked for')
    const id = created.body.account.id
    const off = await json(fresh.db, ['accounts', 'update', '--account', id, '--webhook-fan-out', 'false'])
    assert.equal(off.code, 0)
    assert.equal(off.body.account.settings.webhookFanOut, false)
    assertRefused(
      await json(fresh.db, ['accounts', 'update', '--account', id, '--webhook-fan-out', 'maybe']),
      'INVALID',
      /--webhook-fan-out must be true or false/,
    )
    assertRefused(
      await json(fresh.db, ['accounts', 'update', '--account', '0'.repeat(24), '--webhook-fan-out', 'true']),
      'NOT_FOUND',
      /not found/,
    )
  })

  test('groups create nests under the root by default and under --parent, inheriting the time zone', async () => {
    const child = (await groupsCreate()).body.group
    assert.deepEqual([child.parentId, child.timezone], [root.id, root.timezone])
    const grandchild = await groupsCreate('--parent', child.id, '--timezone', 'America/Manaus')
    assert.equal(grandchild.code, 0)
    assert.deepEqual(
      [grandchild.body.group.parentId, grandchild.body.group.timezone],
      [child.id, 'America/Manaus'],
    )
  })

  test('groups create refuses an unknown time zone, an unknown account and an unknown parent', async () => {
    const [tz, noAccount, noParent] = await Promise.all([
      groupsCreate('--timezone', 'Mars/Olympus'),
      json(fresh.db, ['groups', 'create', '--name', 'G', '--account', UNKNOWN_ID]),
      groupsCreate('--parent', UNKNOWN_ID),
    ])
    assertRefused(tz, 'INVALID', /^timezone: "Mars\/Olympus"/)
    assertRefused(noAccount, 'NOT_FOUND', new RegExp(`account ${UNKNOWN_ID}`))
    assertRefused(noParent, 'NOT_FOUND', new RegExp(`group ${UNKNOWN_ID}`))
  })

  test('users create prints a generated password once, which signs in, and never the hash', async () => {
    const args = ['users', 'create', '--account', account.id, '--first', 'Ana', '--last', 'Lima', '--email']
    const [text, generated, chosen] = await Promise.all([
      ventas(fresh.db, [...args, 'ana@example.com', '--profile', 'operator']),
      json(fresh.db, [...args, 'bia@example.com', '--profile', 'agent']),
      json(fresh.db, [...args, 'caio@example.com', '--profile', 'agent', '--password', 'chosen-secret']),
    ])
    assert.equal(text.code, 0, text.stderr)
    const password = /^password: (\S+) {3}\(shown once\)$/m.exec(text.stdout)?.[1]
    assert.ok(password, text.stdout)
    assert.deepEqual([typeof generated.body.password, generated.body.user.profile], ['string', 'agent'])
    assert.doesNotMatch(generated.stdout, /scrypt|passwordHash/)
    assert.deepEqual([chosen.code, 'password' in chosen.body], [0, false])
    const store = connect(loadConfig(fresh.db.env).storage, { poolSize: 1 })
    try {
      const ana = await findUserByEmail(store, account.id, 'ana@example.com')
      assert.equal(await verifyPassword(password, ana?.passwordHash ?? ''), true)
    } finally {
      await store.destroy()
    }
  })

  test('users create refuses a taken email (in any case) and a profile that does not exist', async () => {
    const args = ['users', 'create', '--account', account.id, '--first', 'A', '--last', 'B', '--email']
    const [taken, profile] = await Promise.all([
      json(fresh.db, [...args, 'ANA@example.com', '--profile', 'agent']),
      json(fresh.db, [...args, 'new@example.com', '--profile', 'owner']),
    ])
    assertRefused(taken, 'CONFLICT', /ana@example\.com/)
    assertRefused(profile, 'INVALID', /--profile must be one of administrator, operator, agent/)
  })
})

describe(`ventas keys (${ENGINE})`, () => {
  const fresh = freshDatabase()
  let groupId: string
  before(async () => {
    groupId = (await json(fresh.db, ['accounts', 'create', '--name', 'Acme'])).body.rootGroup.id
  })

  const create = (name: string, scopes = 'leads:write,prospects:read') =>
    json(fresh.db, ['keys', 'create', '--group', groupId, '--name', name, '--scopes', scopes])
  const listed = async (id: string, reveal = false): Promise<{ stdout: string; row: Json }> => {
    const { stdout, body } = await json(fresh.db, ['keys', 'list', ...(reveal ? ['--reveal'] : [])])
    return { stdout, row: body.integrations.find((i: { id: string }) => i.id === id) }
  }

  test('keys create prints a key that list --reveal shows and a plain list never does', async () => {
    const { code, body } = await create('Website')
    assert.equal(code, 0)
    assert.match(body.key, /^vk_[\w-]{43}$/)
    assert.deepEqual(body.integration.scopes, ['leads:write', 'prospects:read'])
    assert.equal(body.integration.providerKey, 'api.leads:write_prospects:read')
    const [revealed, plain, text] = await Promise.all([
      listed(body.integration.id, true),
      listed(body.integration.id),
      ventas(fresh.db, ['keys', 'list']),
    ])
    assert.equal(revealed.row.key, body.key)
    assert.equal(plain.row.keyHint, `vk_…${body.key.slice(-4)}`)
    assert.equal(plain.stdout.includes(body.key), false)
    assert.doesNotMatch(plain.stdout + revealed.stdout, /keySealed|keyHash/)
    assert.match(text.stdout, new RegExp(`^${body.integration.id}  active `, 'm'))
    assert.equal(text.stdout.includes(body.key), false)
  })

  test('keys create refuses an unknown scope by name, and an unknown group', async () => {
    const [scope, group] = await Promise.all([
      create('Bad', 'leads:write,leads:delete'),
      json(fresh.db, ['keys', 'create', '--group', UNKNOWN_ID, '--name', 'X', '--scopes', 'notifications']),
    ])
    assertRefused(scope, 'INVALID', /^scopes: "leads:delete"/)
    assertRefused(group, 'NOT_FOUND')
  })

  test('keys revoke marks the integration revoked; revoking again is a conflict', async () => {
    const { id } = (await create('Old CRM')).body.integration
    const revoked = await json(fresh.db, ['keys', 'revoke', id])
    assert.equal(revoked.code, 0)
    assert.equal(typeof (await listed(id)).row.revokedAt, 'number')
    const [again, rotate] = await Promise.all([
      json(fresh.db, ['keys', 'revoke', id]),
      json(fresh.db, ['keys', 'rotate', id]),
    ])
    assertRefused(again, 'CONFLICT', /already revoked/)
    assertRefused(rotate, 'CONFLICT')
  })

  test('keys rotate gives a new key, and that is the one list --reveal shows', async () => {
    const created = (await create('Rotated')).body
    const rotated = await json(fresh.db, ['keys', 'rotate', created.integration.id])
    assert.equal(rotated.code, 0)
    assert.match(rotated.body.key, /^vk_/)
    assert.notEqual(rotated.body.key, created.key)
    assert.equal((await listed(created.integration.id, true)).row.key, rotated.body.key)
  })

  test('keys revoke and rotate refuse a missing id and an unknown one', async () => {
    const verbs = ['revoke', 'rotate']
    const missing = await Promise.all(verbs.map((verb) => json(fresh.db, ['keys', verb])))
    const unknown = await Promise.all(verbs.map((verb) => json(fresh.db, ['keys', verb, UNKNOWN_ID])))
    verbs.forEach((verb, i) => {
      assertRefused(missing[i] as Reply, 'INVALID', new RegExp(`id is required: keys ${verb} ID`))
      assertRefused(unknown[i] as Reply, 'NOT_FOUND')
    })
  })
})

describe(`ventas migrate, doctor and refusals (${ENGINE})`, () => {
  const fresh = freshDatabase()
  const migrationsCheck = (body: Json) => body.checks.find((c: { name: string }) => c.name === 'migrations')

  test('doctor on a fresh database is ok and names the migrations start would apply', async () => {
    const { code, body } = await json(fresh.db, ['doctor'], { PORT: '0' })
    assert.equal(code, 0, JSON.stringify(body))
    assert.equal(body.ok, true)
    const names = body.checks.map((c: { name: string }) => c.name)
    assert.deepEqual(names, ['configuration', 'secret key', 'database', 'migrations', 'port'])
    assert.match(migrationsCheck(body).detail, /^pending .*0001-foundation/)
  })

  test('migrate applies the pending migrations on a fresh database; a second run applies nothing', async () => {
    const first = await json(fresh.db, ['migrate'])
    assert.equal(first.code, 0)
    assert.ok(first.body.applied.includes('0001-foundation'), `first run printed ${first.stdout}`)
    const second = await json(fresh.db, ['migrate'])
    assert.deepEqual(second.body, { applied: [] })
    const doctor = await json(fresh.db, ['doctor'], { PORT: '0' })
    assert.equal(migrationsCheck(doctor.body).detail, 'current')
  })

  test('doctor fails on a bad variable, naming it, and on a port already taken', async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    try {
      const port = String((taken.address() as { port: number }).port)
      const [bad, text, busy] = await Promise.all([
        json(fresh.db, ['doctor'], { PORT: 'notaport' }),
        ventas(fresh.db, ['doctor'], { PORT: 'notaport' }),
        json(fresh.db, ['doctor'], { PORT: port }),
      ])
      assert.deepEqual([bad.code, bad.body.ok], [1, false])
      assert.match(bad.body.checks[0].detail, /^PORT: .*"notaport"/)
      assert.equal(text.code, 1)
      assert.match(text.stdout, /^FAIL {2}configuration: PORT: /)
      assert.equal(busy.code, 1)
      const check = busy.body.checks.find((c: { name: string }) => c.name === 'port')
      assert.deepEqual([check.ok, check.detail], [false, `127.0.0.1:${port} is taken`])
    } finally {
      taken.close()
    }
  })

  test('a bad configuration value stops any command with a message naming the variable', async () => {
    const [text, refused] = await Promise.all([
      ventas(fresh.db, ['accounts', 'create', '--name', 'X'], { VENTAS_DEFAULT_COUNTRY: 'Brazil' }),
      json(fresh.db, ['keys', 'list'], { VENTAS_SQLITE_SYNCHRONOUS: 'sometimes' }),
    ])
    assert.equal(text.code, 1)
    assert.match(text.stderr, /^ventas: VENTAS_DEFAULT_COUNTRY: .*"Brazil"/)
    assertRefused(refused, 'INVALID_CONFIGURATION', /^VENTAS_SQLITE_SYNCHRONOUS: /)
  })

  test('an unknown command or option is refused with the usage', async () => {
    const [command, refused, option] = await Promise.all([
      ventas(fresh.db, ['frobnicate']),
      json(fresh.db, ['keys', 'frobnicate']),
      ventas(fresh.db, ['keys', 'list', '--colour']),
    ])
    assert.equal(command.code, 1)
    assert.match(command.stderr, /^ventas: unknown command "frobnicate"/)
    assert.match(command.stderr, /Usage:\n {2}ventas /)
    assertRefused(refused, 'UNKNOWN_COMMAND')
    assert.equal(option.code, 1)
    assert.match(option.stderr, /'--colour'/)
    assert.match(option.stderr, /usage: ventas keys list \[--account A\] \[--reveal\]/)
  })
})
