/**
 * The raw-storage baseline: rows as wide as a stored lead, written through the engine's own driver
 * with no Ventas code. On SQLite, better-sqlite3 with the pragmas Ventas opens its file with (WAL,
 * synchronous = FULL), the driver's defaults otherwise; on PostgreSQL, pg with one multi-row
 * insert. One call of `insert` is one transaction, so it returns once its rows are durable.
 */
import { randomBytes } from 'node:crypto'
import SQLite from 'better-sqlite3'
import pg from 'pg'

export type RawTable = {
  /** Commits one row per body in one transaction. */
  insert: (bodies: string[]) => Promise<void>
  /** The rows the table holds, whoever wrote them. */
  count: () => Promise<number>
  close: () => Promise<void>
}

const COLUMNS =
  'id text primary key, account_id text not null, group_id text not null, integration_id text not null, industry text not null, received_at bigint not null, status text not null, body text not null, request_hash text not null, match_keys text not null'
const TYPES = ['text', 'text', 'text', 'text', 'text', 'bigint', 'text', 'text', 'text', 'text']

const id = () => randomBytes(12).toString('hex')
const [account, group, integration] = [id(), id(), id()]
const row = (body: string) => [
  id(),
  account,
  group,
  integration,
  'retail',
  Date.now(),
  'queued',
  body,
  randomBytes(32).toString('hex'),
  '["p:+5511987654321","e:anasilva@gmail.com"]',
]

/** Opens (creating it if need be) the table `raw_leads` in the database `url` names (`sqlite:<path>` or PostgreSQL). */
export async function openRawTable(url: string): Promise<RawTable> {
  if (url.startsWith('sqlite:')) {
    const sqlite = new SQLite(url.slice('sqlite:'.length))
    sqlite.pragma('journal_mode = WAL')
    sqlite.pragma('synchronous = FULL')
    sqlite.exec(`create table if not exists raw_leads (${COLUMNS})`)
    const insert = sqlite.prepare(`insert into raw_leads values (${TYPES.map(() => '?').join(', ')})`)
    const commit = sqlite.transaction((bodies: string[]) => {
      for (const body of bodies) insert.run(...row(body))
    })
    const count = sqlite.prepare('select count(*) as n from raw_leads')
    return {
      insert: async (bodies) => commit(bodies),
      count: async () => (count.get() as { n: number }).n,
      close: async () => {
        sqlite.close()
      },
    }
  }
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query(`create table if not exists raw_leads (${COLUMNS})`)
  const insert = `insert into raw_leads select * from unnest(${TYPES.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})`
  return {
    // One statement is one transaction: committed, and flushed to the WAL, before it answers.
    insert: async (bodies) => {
      const rows = bodies.map(row)
      await client.query(
        insert,
        TYPES.map((_, c) => rows.map((r) => r[c])),
      )
    },
    count: async () => Number((await client.query('select count(*) as n from raw_leads')).rows[0].n),
    close: () => client.end(),
  }
}
