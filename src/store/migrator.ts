import { type Migration, type MigrationProvider, Migrator, sql } from 'kysely'
import { engineOf } from './connect.js'
import type { Db } from './database.js'
import * as foundation from './migrations/0001-foundation.js'
import * as leads from './migrations/0002-leads.js'
import * as prospectsApi from './migrations/0003-prospects-api.js'
import * as webhooks from './migrations/0004-webhooks.js'
import * as deliveryQueue from './migrations/0005-delivery-queue.js'
import * as deliveryClaim from './migrations/0006-delivery-claim.js'
import * as leadKeysByValue from './migrations/0007-lead-keys-by-value.js'
import * as inactiveKeys from './migrations/0008-inactive-keys.js'
import * as eventsUnindexedSubject from './migrations/0009-events-unindexed-subject.js'
import * as deliveryLanes from './migrations/0010-delivery-lanes.js'

/** Migrations are imported, not read from disk, so the built package carries them. */
const MIGRATIONS: Record<string, Migration> = {
  '0001-foundation': foundation,
  '0002-leads': leads,
  '0003-prospects-api': prospectsApi,
  '0004-webhooks': webhooks,
  '0005-delivery-queue': deliveryQueue,
  '0006-delivery-claim': deliveryClaim,
  '0007-lead-keys-by-value': leadKeysByValue,
  '0008-inactive-keys': inactiveKeys,
  '0009-events-unindexed-subject': eventsUnindexedSubject,
  '0010-delivery-lanes': deliveryLanes,
}

const provider: MigrationProvider = { getMigrations: async () => MIGRATIONS }

/**
 * On PostgreSQL the migration tables are pinned to the connection's current schema: Kysely looks
 * for its tables in every schema otherwise, and a database holding several Ventas schemas (one
 * per test run, or per tenant of a hosting provider) would find another schema's lock table.
 */
async function migratorFor(db: Db): Promise<Migrator> {
  if (engineOf(db) === 'sqlite') return new Migrator({ db, provider })
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db)
  return new Migrator({ db, provider, migrationTableSchema: rows[0]?.schema ?? 'public' })
}

/**
 * Applies every pending migration; returns the names applied. Throws on the first failure.
 * On SQLite, Kysely takes no migration lock (it assumes one connection), so processes starting
 * together on a fresh file (`serve` beside a CLI command) race, and the loser fails in whichever
 * statement meets the winner's work ("already exists", "duplicate column", "locked"). Its
 * transaction rolled back, so it tries again; by then the winner has applied everything and
 * nothing is pending. A migration that is really broken still fails, after ten tries (~2.5 s).
 */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const tries = engineOf(db) === 'sqlite' ? 10 : 1
  for (let attempt = 1; ; attempt++) {
    const { error, results } = await (await migratorFor(db)).migrateToLatest()
    if (!error) return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName)
    if (attempt >= tries) throw error instanceof Error ? error : new Error(String(error))
    await new Promise((resolve) => setTimeout(resolve, 50 * attempt))
  }
}

/** Names of the migrations not yet applied (empty when the schema is current). */
export async function pendingMigrations(db: Db): Promise<string[]> {
  const all = await (await migratorFor(db)).getMigrations()
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name)
}
