import {
  type Compilable,
  CompiledQuery,
  type Generated,
  type Insertable,
  type Kysely,
  type QueryResult,
  sql,
  type Transaction,
} from 'kysely'
import { engineOf } from './connect.js'

/**
 * The database as Kysely sees it, one interface per table. Conventions that hold on both engines:
 * - ids are 24-hex ObjectIds (text);
 * - times are Unix epoch milliseconds (bigint on PostgreSQL, integer on SQLite), turned into
 *   ISO 8601 only at the HTTP edge, so ranges and arithmetic are the same SQL on both;
 * - booleans are 0/1 integers (better-sqlite3 cannot bind JS booleans);
 * - structured values (lists, maps) are JSON text, parsed by the repository that owns the table.
 * Column names are snake_case in SQL and camelCase here (CamelCasePlugin).
 */
export interface AccountsTable {
  id: string
  name: string
  countryCode: string
  settings: string
  createdAt: number
}

export interface GroupsTable {
  id: string
  accountId: string
  parentId: string | null
  name: string
  displayName: string
  type: string
  timezone: string
  countryCode: string
  officeHours: string | null
  distribution: 'none' | 'roundRobin' | 'leastLoaded'
  absenceMessage: string | null
  leadCategories: string
  defaultCategory: string
  currency: string
  distance: 'km' | 'mi'
  industries: string
  createdAt: number
  roundRobinTurn: Generated<number>
}

/** Transitive closure of the group tree: one row per (ancestor, descendant), depth 0 for self. */
export interface GroupClosureTable {
  ancestorId: string
  descendantId: string
  depth: number
}

export interface UsersTable {
  id: string
  accountId: string
  profile: 'administrator' | 'operator' | 'agent'
  firstName: string
  lastName: string
  email: string
  phone: string | null
  legacyId: string | null
  externalId: string | null
  appFields: string | null
  active: number
  working: number
  takesProspects: number
  passwordHash: string | null
  createdAt: number
}

export interface GroupMembersTable {
  groupId: string
  userId: string
}

export interface IntegrationsTable {
  id: string
  accountId: string
  groupId: string
  actAsUserId: string | null
  name: string
  scopes: string
  keyHash: string
  keySealed: string
  keyHint: string
  rateLimit: number | null
  language: string | null
  createdAt: number
  createdBy: string
  revokedAt: number | null
  lastUsedAt: number | null
}

export interface AuditLogTable {
  id: string
  accountId: string
  actor: string
  action: string
  subjectType: string
  subjectId: string
  at: number
  details: string
}

/** Facts about the installation itself (e.g. that first-run bootstrap has happened). */
export interface InstallationTable {
  key: string
  value: string
  createdAt: Generated<number>
}

export interface LeadsTable {
  id: string
  accountId: string
  groupId: string
  integrationId: string
  industry: string
  receivedAt: number
  status: 'queued' | 'processed' | 'rejected'
  processedAt: number | null
  prospectId: string | null
  merged: number
  error: string | null
  body: string
  providerRef: string | null
  requestHash: string
  /** JSON list of the lead's match keys, computed at accept. */
  matchKeys: Generated<string>
}

export interface LeadKeysTable {
  accountId: string
  keyValue: string
  leadId: string
  receivedAt: number
}

export interface IdempotencyKeysTable {
  integrationId: string
  key: string
  requestHash: string
  leadId: string
  createdAt: number
}

export interface JobsTable {
  id: string
  kind: 'lead'
  subjectId: string
  runAt: number
  attempts: number
  maxAttempts: number
  lockedBy: string | null
  lockedUntil: number | null
  lastError: string | null
  deadAt: number | null
  createdAt: number
}

export interface ProspectsTable {
  id: string
  accountId: string
  groupId: string
  initialGroupId: string
  firstName: string
  lastName: string
  status: 'unclaimed' | 'new' | 'followUp' | 'processing' | 'archived'
  category: string
  label: string | null
  /** JSON: nin, address fields, contact mediums, first contact and reminder times. */
  details: string
  phones: string
  emails: string
  additionalData: string
  agentId: string | null
  assignedAt: number | null
  transferredAt: number | null
  absenceMessage: string | null
  archivingReason: string | null
  userMade: number
  previousProspectId: string | null
  mergedInto: string | null
  sequence: number
  createdAt: number
  updatedAt: number
  deletedAt: Generated<number | null>
  /** First and last name, lower case without accents, for substring search. */
  searchName: Generated<string>
}

export interface ProspectKeysTable {
  accountId: string
  keyType: 'phone' | 'email'
  keyValue: string
  prospectId: string
  active: number
}

export interface InteractionsTable {
  id: string
  accountId: string
  prospectId: string
  leadId: string | null
  agentId: string | null
  via: string
  status: 'created' | 'updated'
  output: string
  proactive: number
  createdAt: number
}

export interface MergesTable {
  id: string
  accountId: string
  survivorId: string
  mergedProspectIds: string
  leadId: string | null
  keys: string
  skippedKeys: string
  at: number
}

export interface EventsTable {
  id: string
  accountId: string
  groupId: string
  topic: string
  type: string
  subjectId: string
  sequence: number | null
  payload: string
  createdAt: number
  dispatchedAt: number | null
  body: string | null
}

export interface SubscriptionsTable {
  id: string
  accountId: string
  groupId: string
  integrationId: string
  topics: string
  callbackUrl: string
  secret: string
  previousSecret: string | null
  previousSecretUntil: number | null
  active: number
  failingSince: number | null
  deactivatedAt: number | null
  deactivationReason: string | null
  createdAt: number
}

export interface DeliveriesTable {
  id: string
  accountId: string
  subscriptionId: string
  eventId: string
  topic: string
  type: string
  status: 'pending' | 'delivered' | 'failed'
  attempts: number
  nextAttemptAt: number | null
  lockedBy: string | null
  lockedUntil: number | null
  lastStatusCode: number | null
  lastError: string | null
  deliveredAt: number | null
  body: string | null
  createdAt: number
  updatedAt: number
}

export interface DeliveryAttemptsTable {
  id: string
  deliveryId: string
  number: number
  sentAt: number
  durationMs: number
  statusCode: number | null
  responseBody: string | null
  error: string | null
}

export interface BlockedValuesTable {
  accountId: string
  kind: 'phone' | 'email'
  value: string
}

export interface Database {
  accounts: AccountsTable
  groups: GroupsTable
  groupClosure: GroupClosureTable
  users: UsersTable
  groupMembers: GroupMembersTable
  integrations: IntegrationsTable
  auditLog: AuditLogTable
  installation: InstallationTable
  leads: LeadsTable
  idempotencyKeys: IdempotencyKeysTable
  leadKeys: LeadKeysTable
  jobs: JobsTable
  prospects: ProspectsTable
  prospectKeys: ProspectKeysTable
  interactions: InteractionsTable
  merges: MergesTable
  events: EventsTable
  subscriptions: SubscriptionsTable
  deliveries: DeliveriesTable
  deliveryAttempts: DeliveryAttemptsTable
  blockedValues: BlockedValuesTable
}

export type Db = Kysely<Database>
/** A repository function runs in whatever it is given: the database or an open transaction. */
export type Tx = Transaction<Database>
export type Executor = Kysely<Database> | Transaction<Database>

/** Each SQLite database's `synchronous` level as `connect` set it: read once, restored after each unflushed transaction. */
const synchronousLevel = new WeakMap<Db, number>()
const UNFLUSHED = CompiledQuery.raw('pragma synchronous = normal')

/**
 * Runs `work` in a transaction whose commit need not reach the disk before it returns: for
 * bookkeeping whose loss in a power cut only makes work happen again, which at-least-once
 * delivery allows (a claim's lease, an event's dispatch, a webhook attempt's record: the delivery
 * is sent again with the same webhook-id). Never for anything a caller was told is stored.
 * SQLite commits it under `synchronous = NORMAL` on the one connection, held for the whole span
 * so no other transaction commits in between; the next full commit flushes it with its own.
 * PostgreSQL turns `synchronous_commit` off for the transaction. Either way the database stays
 * consistent.
 */
export async function unflushedTransaction<T>(
  db: Db,
  work: (tx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  if (engineOf(db) === 'postgres') {
    return db.transaction().execute(async (tx) => {
      await sql`set local synchronous_commit = off`.execute(tx)
      return work(tx)
    })
  }
  return db.connection().execute(async (connection) => {
    let level = synchronousLevel.get(db)
    if (level === undefined) {
      const { rows } = await sql<{ synchronous: number }>`pragma synchronous`.execute(connection)
      level = rows[0]?.synchronous ?? 2
      synchronousLevel.set(db, level)
    }
    await connection.executeQuery(UNFLUSHED)
    try {
      return await connection.transaction().execute(work)
    } finally {
      await connection.executeQuery(CompiledQuery.raw(`pragma synchronous = ${Number(level)}`))
    }
  })
}

/** Runs `work` in the caller's transaction when there is one, else in a new one. */
export function inTransaction<T>(db: Executor, work: (tx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.isTransaction ? work(db as Transaction<Database>) : db.transaction().execute(work)
}

/**
 * Runs `work` with one of PostgreSQL's plan methods off (`enable_sort`, `enable_seqscan`), in the
 * caller's transaction or a new one, then sets the method back to its default; on SQLite, as is.
 * For statements written for one index, whose plans a burst's stale statistics turned into reads
 * of a whole table (BENCHMARKS.md §3). Should `work` fail, its transaction rolls the setting back.
 */
export function withPlanMethodOff<T>(
  db: Executor,
  method: 'enable_sort' | 'enable_seqscan',
  work: (tx: Executor) => Promise<T>,
): Promise<T> {
  if (engineOf(db) !== 'postgres') return work(db)
  return inTransaction(db, async (tx) => {
    await sql`select set_config(${method}, 'off', true)`.execute(tx)
    const result = await work(tx)
    await sql`select set_config(name, reset_val, true) from pg_settings where name = ${method}`.execute(tx)
    return result
  })
}

/**
 * Rows per INSERT: statements have parameter limits (SQLite 32,766, PostgreSQL 65,535), and a
 * 1000-lead batch with its keys would pass them in one statement.
 */
export const INSERT_CHUNK = 500

export function chunks<T>(rows: T[], size = INSERT_CHUNK): T[][] {
  const out: T[][] = []
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size))
  return out
}

type Columns<T extends keyof Database> = keyof Database[T] & string

/** The values a raw statement binds: `mark` adds one and gives its placeholder ($n or ?). */
export function bound(db: Executor): { values: unknown[]; mark: (value: unknown) => string } {
  const postgres = engineOf(db) === 'postgres'
  const values: unknown[] = []
  return {
    values,
    mark: (value) => {
      values.push(value)
      return postgres ? `$${values.length}` : '?'
    },
  }
}

/**
 * Inserts rows `INSERT_CHUNK` a statement, the SQL written here rather than by Kysely's builder:
 * the builder turns every value into a node, and the camel-case plugin copies each node again,
 * which cost more than running the insert itself (BENCHMARKS.md, batch intake). It writes what
 * Kysely wrote: a statement names the columns its rows set, and a row that leaves one of them
 * undefined gets DEFAULT on PostgreSQL and null on SQLite (which has no DEFAULT in VALUES).
 * `conflict` adds ON CONFLICT, in words both engines share: `update` sets those columns from the
 * new row, and without it the row is skipped (DO NOTHING). 500 rows of the widest table (27
 * columns) stay well under SQLite's 32,766 bound values. Returns how many rows were written.
 */
export async function insertRows<T extends keyof Database & string>(
  db: Executor,
  table: T,
  rows: Insertable<Database[T]>[],
  conflict?: { on: Columns<T>[]; update?: Columns<T>[] },
): Promise<number> {
  const postgres = engineOf(db) === 'postgres'
  let inserted = 0
  const onConflict = conflict
    ? ` on conflict (${conflict.on.map(quoted).join(', ')}) do ${
        conflict.update?.length
          ? `update set ${conflict.update.map((c) => `${quoted(c)} = excluded.${quoted(c)}`).join(', ')}`
          : 'nothing'
      }`
    : ''
  for (const chunk of chunks(rows)) {
    const named = new Set<string>()
    for (const row of chunk)
      for (const [column, value] of Object.entries(row)) if (value !== undefined) named.add(column)
    const columns = [...named]
    if (columns.length === 0) continue
    const { values, mark } = bound(db)
    const tuples = chunk.map((row) => {
      const marks = columns.map((column) => {
        const value = row[column as keyof typeof row]
        return value === undefined ? (postgres ? 'default' : 'null') : mark(value)
      })
      return `(${marks.join(', ')})`
    })
    const names = `${quoted(table)} (${columns.map(quoted).join(', ')})`
    const result = await db.executeQuery(
      CompiledQuery.raw(`insert into ${names} values ${tuples.join(', ')}${onConflict}`, values),
    )
    inserted += Number(result.numAffectedRows ?? 0)
  }
  return inserted
}

/**
 * Updates rows found by `key` from a VALUES list of their new values, `INSERT_CHUNK` rows a
 * statement, the SQL written here for the reason insertRows writes its own: one statement, where
 * Kysely's builder would need one a row. Every row names the same columns, `key` among them;
 * `same` sets columns to one value for every row. PostgreSQL reads untyped parameters in VALUES as
 * text, so a column of another type names it in `types` (`bigint`, `integer`).
 */
export async function updateRows<T extends keyof Database & string>(
  db: Executor,
  table: T,
  key: Columns<T>,
  rows: Partial<Record<Columns<T>, unknown>>[],
  options: { same?: Partial<Record<Columns<T>, unknown>>; types?: Partial<Record<Columns<T>, string>> } = {},
): Promise<void> {
  const columns = Object.keys(rows[0] ?? {}) as Columns<T>[]
  const postgres = engineOf(db) === 'postgres'
  const casts = columns.map((c) => (postgres && options.types?.[c] ? `::${options.types[c]}` : ''))
  for (const chunk of chunks(rows)) {
    const { values, mark } = bound(db)
    const tuples = chunk.map((row) => `(${columns.map((c, i) => `${mark(row[c])}${casts[i]}`).join(', ')})`)
    const sets = [
      ...Object.entries(options.same ?? {}).map(([column, value]) => `${quoted(column)} = ${mark(value)}`),
      ...columns.filter((c) => c !== key).map((c) => `${quoted(c)} = changes.${quoted(c)}`),
    ]
    await db.executeQuery(
      CompiledQuery.raw(
        `with changes (${columns.map(quoted).join(', ')}) as (values ${tuples.join(', ')}) ` +
          `update ${quoted(table)} set ${sets.join(', ')} from changes ` +
          `where ${quoted(table)}.${quoted(key)} = changes.${quoted(key)}`,
        values,
      ),
    )
  }
}

/** A camelCase name as the camel-case plugin writes it in SQL: snake_case, double-quoted. */
function quoted(name: string): string {
  return `"${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}"`
}

/** Where a reusable query's value goes: a parameter the compiled query carries until it runs; `item` for one of a list's. */
class Slot {
  constructor(
    readonly name: string,
    readonly item?: number,
  ) {}
}

/** The places a list gets in a compiled query: its length's next power of two, so a few shapes serve every length. */
function room(length: number): number {
  return 2 ** Math.ceil(Math.log2(length))
}

/**
 * A query Kysely builds and compiles once per engine, then runs with new values. Building and
 * compiling cost about five times what running a short statement on SQLite does (BENCHMARKS.md),
 * so statements run once per lead or per delivery are written this way. `build` gets stand-ins
 * for the values: it may only hand them to Kysely as values (never test or transform them), and
 * the query's shape must not depend on them; a stand-in that does not reach the compiled
 * parameters is an error at the first run.
 *
 * A list (an array value) may only stand on the right of `in`. It is compiled once for each room
 * it needs, the next power of two of its length, and the room its items leave is filled with its
 * last item, which `in` reads as the same list: a query over lists of 1 to 500 values is 10
 * statements, not 500 (and SQLite keeps those prepared). An empty list is an error; callers skip.
 */
export function reusable<Values extends Record<string, unknown>, R>(
  build: (db: Executor, values: Values) => Compilable<R>,
): (db: Executor, values: Values) => Promise<QueryResult<R>> {
  const compiled = new Map<string, CompiledQuery<R>>()
  return async (db, values) => {
    let shape: string = engineOf(db)
    for (const name in values) {
      const value = values[name]
      if (!Array.isArray(value)) continue
      if (value.length === 0) throw new Error(`reusable query: the list ${name} is empty`)
      shape += ` ${name}:${room(value.length)}`
    }
    let query = compiled.get(shape)
    if (!query) {
      const named = new Set<string>()
      const standIns = new Proxy({} as Values, {
        get: (_, name) => {
          named.add(String(name))
          const value = values[String(name)]
          return Array.isArray(value)
            ? Array.from({ length: room(value.length) }, (_, i) => new Slot(String(name), i))
            : new Slot(String(name))
        },
      })
      query = build(db, standIns).compile()
      const carried = new Set(query.parameters.flatMap((p) => (p instanceof Slot ? [p.name] : [])))
      const lost = [...named].filter((name) => !carried.has(name))
      if (lost.length > 0) throw new Error(`reusable query: ${lost.join(', ')} did not reach its parameters`)
      compiled.set(shape, query)
    }
    const parameters = query.parameters.map((p) => (p instanceof Slot ? filled(values, p) : p))
    return db.executeQuery(CompiledQuery.raw(query.sql, parameters) as CompiledQuery<R>)
  }
}

/** The value a slot stands for; past the end of its list, the list's last item. */
function filled(values: Record<string, unknown>, slot: Slot): unknown {
  const value = values[slot.name]
  if (slot.item === undefined) return value
  const list = value as unknown[]
  return list[Math.min(slot.item, list.length - 1)]
}
