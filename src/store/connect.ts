import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import SQLite from 'better-sqlite3'
import { CamelCasePlugin, Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import type { Storage } from '../config.js'
import type { Database, Db } from './database.js'

// int8 (bigint) columns hold epoch milliseconds, well inside Number's exact range.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value))

export type ConnectOptions = {
  /** SQLite: FULL makes an acknowledged write survive a power loss; NORMAL only a process crash. */
  sqliteSynchronous?: 'FULL' | 'NORMAL'
  poolSize?: number
}

/** Opens the database that `storage` names, with the pragmas and pool every process needs. */
export function connect(storage: Storage, options: ConnectOptions = {}): Db {
  const plugins = [new CamelCasePlugin()]
  if (storage.engine === 'sqlite') {
    mkdirSync(dirname(storage.path), { recursive: true })
    const database = new SQLite(storage.path)
    database.pragma('journal_mode = WAL')
    database.pragma(`synchronous = ${options.sqliteSynchronous ?? 'FULL'}`)
    database.pragma('busy_timeout = 5000')
    database.pragma('foreign_keys = ON')
    return new Kysely<Database>({ dialect: new SqliteDialect({ database }), plugins })
  }
  const pool = new pg.Pool({
    connectionString: storage.url,
    max: options.poolSize ?? 10,
  })
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }), plugins })
}

export function engineOf(db: Db): 'sqlite' | 'postgres' {
  return db.getExecutor().adapter.constructor.name.startsWith('Sqlite') ? 'sqlite' : 'postgres'
}
