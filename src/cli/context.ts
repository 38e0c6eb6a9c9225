import { type Config, loadConfig, loadSecretKey } from '../config.js'
import { connect } from '../store/connect.js'
import type { Db } from '../store/database.js'
import { migrateToLatest } from '../store/migrator.js'

/** What an administrative command works with: config, an up-to-date database and the secret key. */
export type CliContext = { config: Config; db: Db; secretKey: Buffer }

export async function openContext(): Promise<CliContext> {
  const config = loadConfig()
  const secretKey = loadSecretKey(config)
  const db = connect(config.storage, { sqliteSynchronous: config.sqliteSynchronous, poolSize: 2 })
  await migrateToLatest(db)
  return { config, db, secretKey }
}

/** A refusal the CLI prints and exits 1 on: the user gave something wrong, nothing crashed. */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}
