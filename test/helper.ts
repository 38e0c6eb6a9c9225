import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CompiledQuery } from 'kysely'
import pg from 'pg'
import { type App, buildApp } from '../src/app.js'
import { type Config, loadConfig } from '../src/config.js'
import { type Running, startServer } from '../src/server.js'
import { connect } from '../src/store/connect.js'
import type { Db, Executor } from '../src/store/database.js'
import { migrateToLatest } from '../src/store/migrator.js'

/**
 * Every storage test runs on the engine the environment names: SQLite by default, PostgreSQL
 * when TEST_DATABASE_URL (or DATABASE_URL) is a postgres:// URL. Each test database is new: a
 * SQLite file in a temp folder, or a PostgreSQL schema of its own, dropped afterwards.
 */
const pgBase = [process.env.TEST_DATABASE_URL, process.env.DATABASE_URL].find((u) =>
  u?.startsWith('postgres'),
)
export const ENGINE: 'sqlite' | 'postgres' = pgBase ? 'postgres' : 'sqlite'

export type TestDatabase = {
  url: string
  env: Record<string, string>
  sqlitePath: string | null
  drop: () => Promise<void>
}

/** A fresh, empty database (not migrated) and the environment that points a process at it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (pgBase) {
    const schema = `t_${randomBytes(6).toString('hex')}`
    const admin = new pg.Client({ connectionString: pgBase })
    await admin.connect()
    await admin.query(`create schema ${schema}`)
    await admin.end()
    const url = `${pgBase}${pgBase.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`
    const secret = randomBytes(32).toString('hex')
    return {
      url,
      env: { DATABASE_URL: url, VENTAS_SECRET_KEY: secret },
      sqlitePath: null,
      drop: async () => {
        const client = new pg.Client({ connectionString: pgBase })
        await client.connect()
        await client.query(`drop schema if exists ${schema} cascade`)
        await client.end()
      },
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'ventas-test-'))
  const path = join(dir, 'ventas.db')
  return {
    url: `sqlite:${path}`,
    env: { DATABASE_URL: `sqlite:${path}` },
    sqlitePath: path,
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  }
}

/**
 * Two connections of their own to one fresh, migrated database, as two processes hold them (each
 * with its own SQLite connection or PostgreSQL pool), and a `notes (body text)` table: for what
 * happens between them.
 */
export async function createTwoConnections(): Promise<{
  first: Db
  second: Db
  storage: Config['storage']
  close: () => Promise<void>
}> {
  const database = await createTestDatabase()
  const { storage } = loadConfig(database.env)
  const first = connect(storage)
  const second = connect(storage)
  await migrateToLatest(first)
  await first.schema.createTable('notes').addColumn('body', 'text').execute()
  return {
    first,
    second,
    storage,
    close: async () => {
      await first.destroy()
      await second.destroy()
      await database.drop()
    },
  }
}

export type TestContext = {
  app: App
  db: Db
  config: Config
  secretKey: Buffer
  database: TestDatabase
  /** The injected clock: tests move it instead of sleeping. */
  clock: { now: number }
  close: () => Promise<void>
}

export type TestAppOptions = {
  env?: Record<string, string>
  now?: number
  logger?: Parameters<typeof buildApp>[0]['logger']
}

/** A migrated database and the real app on it, driven through `app.inject()`. */
export async function createTestApp(options: TestAppOptions = {}): Promise<TestContext> {
  const database = await createTestDatabase()
  const config = loadConfig({ ...database.env, LOG_LEVEL: 'silent', ...options.env })
  const secretKey = randomBytes(32)
  const db = connect(config.storage, { poolSize: 4 })
  await migrateToLatest(db)
  const clock = { now: options.now ?? Date.now() }
  const app = await buildApp({ config, db, secretKey, now: () => clock.now, logger: options.logger ?? false })
  await app.ready()
  return {
    app,
    db,
    config,
    secretKey,
    database,
    clock,
    close: async () => {
      await app.close()
      await db.destroy()
      await database.drop()
    },
  }
}

/** `ventas serve`, or `ventas api` without the worker, started as operators start it on a free port, and the API key its banner prints. */
export async function startTestServer(
  env: Record<string, string>,
  withWorker: boolean,
): Promise<{ running: Running; key: string }> {
  let banner = ''
  const config = loadConfig({ PORT: '0', LOG_LEVEL: 'silent', ...env })
  const running = await startServer(config, { withWorker, print: (text) => (banner = text) })
  const key = /API key: +(vk_\S+)/.exec(banner)?.[1]
  if (!key) throw new Error(`no API key in the banner:\n${banner}`)
  return { running, key }
}

export type Plan = { sql: string; nodes: string[] }

/**
 * PostgreSQL's plans of the statements `tx` runs through `executeQuery` that `pick` selects, as
 * node types with their index names, each explained on the same connection right after it runs:
 * under the settings in force then, and over what the statement itself changed (a claim plans
 * differently once it has locked and updated its jobs). The list fills as the statements run.
 */
export function recordPlans(tx: Executor, pick: (sql: string) => boolean): Plan[] {
  const plans: Plan[] = []
  const execute = tx.executeQuery.bind(tx)
  tx.executeQuery = (async (query: CompiledQuery) => {
    const result = await execute(query)
    if (pick(query.sql)) {
      const { rows } = await execute<{ 'QUERY PLAN': unknown }>({
        ...query,
        sql: `explain (format json) ${query.sql}`,
      })
      const plan = JSON.stringify(rows[0]?.['QUERY PLAN'])
      const nodes = [...plan.matchAll(/"Node Type":"([^"]+)"(?:[^{}]*?"Index Name":"([^"]+)")?/g)]
      plans.push({
        sql: query.sql,
        nodes: nodes.map(([, type, index]) => (index ? `${type} ${index}` : String(type))),
      })
    }
    return result
  }) as typeof tx.executeQuery
  return plans
}
