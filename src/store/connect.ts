import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type SQLite from 'better-sqlite3'
import {
  CamelCasePlugin,
  CompiledQuery,
  type DatabaseConnection,
  Kysely,
  PostgresDialect,
  SqliteAdapter,
  type SqliteDatabase,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
} from 'kysely'
import type pg from 'pg'
import type { Storage } from '../config.js'
import { type Checkpointer, FALLBACK_PAGES, startCheckpointer } from './checkpointer.js'
import type { Database, Db } from './database.js'

const requireDriver = createRequire(import.meta.url)
let pgLoaded: typeof pg | undefined

/**
 * The PostgreSQL driver, loaded on first use: a SQLite install never needs it, and loading it was
 * a tenth of a start (BENCHMARKS.md §8). better-sqlite3 likewise, in `connect`.
 */
export function pgDriver(): typeof pg {
  if (!pgLoaded) {
    pgLoaded = requireDriver('pg') as typeof pg
    // int8 (bigint) columns hold epoch milliseconds, well inside Number's exact range.
    pgLoaded.types.setTypeParser(pgLoaded.types.builtins.INT8, (value) => Number(value))
  }
  return pgLoaded
}

/** How long a statement waits for another process's write lock before failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5_000
const BEGIN = CompiledQuery.raw('begin immediate')
const FAIL_AT_ONCE = CompiledQuery.raw('pragma busy_timeout = 0')
const WAIT = CompiledQuery.raw(`pragma busy_timeout = ${BUSY_TIMEOUT_MS}`)

/**
 * SQLite transactions begin IMMEDIATE: they take the write lock at once, so a second process (a
 * CLI command beside `ventas serve`) waits its turn. With SQLite's default deferred BEGIN, a
 * transaction that reads and then writes fails at once with SQLITE_BUSY when another process
 * wrote in between; busy_timeout does not cover that lock upgrade.
 *
 * The wait for the lock is asynchronous: BEGIN fails at once when another process holds it and is
 * tried again after a turn of the event loop, then every millisecond, for up to BUSY_TIMEOUT_MS.
 * SQLite's own busy handler sleeps inside the call instead (1, 2, 5, 10 ms... as it keeps failing),
 * and better-sqlite3 is synchronous: `ventas api` beside a `ventas worker` froze for every one of
 * the other's transactions, and each wait overshot the other's short hold.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    const deadline = Date.now() + BUSY_TIMEOUT_MS
    await connection.executeQuery(FAIL_AT_ONCE)
    try {
      for (let tries = 0; ; tries += 1) {
        try {
          await connection.executeQuery(BEGIN)
          return
        } catch (error) {
          if (!String((error as { code?: string }).code).startsWith('SQLITE_BUSY') || Date.now() >= deadline)
            throw error
        }
        await (tries === 0 ? new Promise((resolve) => setImmediate(resolve)) : sleep(1))
      }
    } finally {
      // Fails only on a closed database, whose own error is the one to see.
      await connection.executeQuery(WAIT).catch(() => undefined)
    }
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly sqlite: SqliteDialectConfig) {
    super(sqlite)
  }

  override createDriver() {
    return new ImmediateSqliteDriver(this.sqlite)
  }
}

/**
 * Kysely prepares every query afresh; compiling SQL costs more than running a short statement.
 * The handful of distinct statements a process runs are kept prepared instead (a query is one
 * statement; Kysely runs one at a time on its single SQLite connection, so none is ever busy).
 */
function reusing(database: SQLite.Database, checkpointer?: Checkpointer): SqliteDatabase {
  const prepared = new Map<string, SQLite.Statement>()
  return {
    close: () => {
      checkpointer?.stop()
      database.close()
    },
    prepare(sql) {
      let statement = prepared.get(sql)
      if (!statement) {
        if (prepared.size >= 1000) prepared.clear() // generated IN-lists make a long tail of one-offs
        statement = database.prepare(sql)
        prepared.set(sql, statement)
      }
      return statement
    },
  }
}

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
    const Driver = requireDriver('better-sqlite3') as typeof SQLite
    const database = new Driver(storage.path)
    database.pragma('journal_mode = WAL')
    database.pragma(`synchronous = ${options.sqliteSynchronous ?? 'FULL'}`)
    database.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
    database.pragma('foreign_keys = ON')
    database.pragma(`wal_autocheckpoint = ${FALLBACK_PAGES}`)
    const checkpointer = startCheckpointer(storage.path)
    return new Kysely<Database>({
      dialect: new ImmediateSqliteDialect({ database: reusing(database, checkpointer) }),
      plugins,
    })
  }
  const pool = new (pgDriver().Pool)({
    connectionString: storage.url,
    max: options.poolSize ?? 10,
  })
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }), plugins })
}

/**
 * The connection for the reads a request makes before it writes (its key, its group, the blocked
 * values) in a process whose commits wait for another process's write lock (`ventas api` beside
 * `ventas worker`). Kysely runs one transaction at a time on a SQLite connection and holds it
 * while the transaction waits for the lock, so those reads queued behind the intake's commit as
 * it waited for the worker's: at 1,000 leads/s, 4.3–8.0 ms from a lead's arrival to its intake,
 * against 0.6–0.9 ms read here (BENCHMARKS.md §6). This second, read-only connection reads the
 * last committed state beside it (WAL): a request that arrives while a key's revocation or a
 * group's change waits for the lock is checked as it would have been a moment earlier.
 * `ventas serve` keeps one connection: its transactions are its own, and v1's p99 at 500/s went
 * 7.0–12.4 → 9.5–27.3 ms with a reader. PostgreSQL's pool gives each read a connection already.
 */
export function connectReader(storage: Extract<Storage, { engine: 'sqlite' }>): Db {
  const Driver = requireDriver('better-sqlite3') as typeof SQLite
  const database = new Driver(storage.path, { readonly: true })
  database.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
  return new Kysely<Database>({
    dialect: new SqliteDialect({ database: reusing(database) }),
    plugins: [new CamelCasePlugin()],
  })
}

export function engineOf(db: Db): 'sqlite' | 'postgres' {
  return db.getExecutor().adapter instanceof SqliteAdapter ? 'sqlite' : 'postgres'
}
