import { existsSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { sql } from 'kysely'
import { type Config, ConfigError, loadConfig, loadSecretKey, secretKeyPath } from '../../config.js'
import { startServer, startWorker, stopOnSignals } from '../../server.js'
import { connect } from '../../store/connect.js'
import { migrateToLatest, pendingMigrations } from '../../store/migrator.js'
import { boundHeapGrowth } from '../heap.js'
import type { Command } from '../main.js'

/** `serve`: API and worker in one process. */
export const serve: Command = {
  usage: 'serve',
  options: {},
  needsContext: false,
  async run() {
    boundHeapGrowth()
    await stopOnSignals(startServer(loadConfig(), { withWorker: true }))
    return null
  },
}

/** `api`: the API only; run `ventas worker` processes beside it. */
export const api: Command = {
  usage: 'api',
  options: {},
  needsContext: false,
  async run() {
    boundHeapGrowth()
    await stopOnSignals(startServer(loadConfig(), { withWorker: false }))
    return null
  },
}

/** `worker`: lead processing only; any number may share a PostgreSQL database. */
export const worker: Command = {
  usage: 'worker',
  options: {},
  needsContext: false,
  async run() {
    boundHeapGrowth()
    await stopOnSignals(startWorker(loadConfig()))
    return null
  },
}

/** `migrate`: applies pending migrations alone (every start applies them too). */
export const migrate: Command = {
  usage: 'migrate',
  options: {},
  needsContext: false,
  async run() {
    const db = connect(loadConfig().storage, { poolSize: 1 })
    try {
      const applied = await migrateToLatest(db)
      return {
        text: applied.length ? `applied: ${applied.join(', ')}` : 'already up to date',
        json: { applied },
      }
    } finally {
      await db.destroy()
    }
  },
}

type Check = { name: string; ok: boolean; detail: string }

async function portIsFree(config: Config): Promise<boolean> {
  if (config.port === 0) return true
  return new Promise((resolve) => {
    const probe = createServer()
    probe.once('error', () => resolve(false))
    probe.listen(config.port, config.host, () => probe.close(() => resolve(true)))
  })
}

/**
 * `doctor`: everything that would stop `ventas serve` from starting, checked without starting it.
 * It never migrates; it reports pending migrations (start applies them).
 */
export const doctor: Command = {
  usage: 'doctor',
  options: {},
  needsContext: false,
  async run() {
    const checks: Check[] = []
    let config: Config
    try {
      config = loadConfig()
      checks.push({ name: 'configuration', ok: true, detail: `storage ${config.storage.engine}` })
    } catch (error) {
      checks.push({ name: 'configuration', ok: false, detail: (error as Error).message })
      return report(checks)
    }
    try {
      const willGenerate =
        config.storage.engine === 'sqlite' && !config.secretKey && !existsSync(secretKeyPath(config.storage))
      if (willGenerate) {
        checks.push({
          name: 'secret key',
          ok: true,
          detail: `will be generated into ${secretKeyPath(config.storage as never)}`,
        })
      } else {
        loadSecretKey(config)
        const path =
          config.storage.engine === 'sqlite' && !config.secretKey ? secretKeyPath(config.storage) : null
        const loose = path && (statSync(path).mode & 0o077) !== 0
        checks.push({
          name: 'secret key',
          ok: !loose,
          detail: loose
            ? `${path} is readable by other users; chmod 600 it`
            : path
              ? `from ${path}`
              : 'from VENTAS_SECRET_KEY',
        })
      }
    } catch (error) {
      checks.push({
        name: 'secret key',
        ok: false,
        detail: error instanceof ConfigError ? error.message : String(error),
      })
    }
    const db = connect(config.storage, { poolSize: 1 })
    try {
      await sql`select 1`.execute(db)
      checks.push({
        name: 'database',
        ok: true,
        detail: config.storage.engine === 'sqlite' ? config.storage.path : 'reachable',
      })
      const pending = await pendingMigrations(db)
      checks.push({
        name: 'migrations',
        ok: true,
        detail: pending.length ? `pending (start applies them): ${pending.join(', ')}` : 'current',
      })
    } catch (error) {
      checks.push({ name: 'database', ok: false, detail: (error as Error).message })
    } finally {
      await db.destroy()
    }
    const free = await portIsFree(config)
    checks.push({
      name: 'port',
      ok: free,
      detail: free ? `${config.host}:${config.port} is free` : `${config.host}:${config.port} is taken`,
    })
    return report(checks)
  },
}

function report(checks: Check[]) {
  const text = checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'}  ${c.name}: ${c.detail}`).join('\n')
  const ok = checks.every((c) => c.ok)
  return { text, json: { ok, checks }, exitCode: ok ? 0 : 1 }
}
