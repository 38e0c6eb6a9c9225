import { type Migration, type MigrationProvider, Migrator } from 'kysely'
import type { Db } from './database.js'
import * as foundation from './migrations/0001-foundation.js'

/** Migrations are imported, not read from disk, so the built package carries them. */
const MIGRATIONS: Record<string, Migration> = {
  '0001-foundation': foundation,
}

const provider: MigrationProvider = { getMigrations: async () => MIGRATIONS }

function migratorFor(db: Db): Migrator {
  return new Migrator({ db, provider })
}

/** Applies every pending migration; returns the names applied. Throws on the first failure. */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const { error, results } = await migratorFor(db).migrateToLatest()
  if (error) throw error instanceof Error ? error : new Error(String(error))
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName)
}

/** Names of the migrations not yet applied (empty when the schema is current). */
export async function pendingMigrations(db: Db): Promise<string[]> {
  const all = await migratorFor(db).getMigrations()
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name)
}
