import type { Generated, Kysely, Transaction } from 'kysely'

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

export interface Database {
  accounts: AccountsTable
  groups: GroupsTable
  groupClosure: GroupClosureTable
  users: UsersTable
  groupMembers: GroupMembersTable
  integrations: IntegrationsTable
  auditLog: AuditLogTable
  installation: InstallationTable
}

export type Db = Kysely<Database>
/** A repository function runs in whatever it is given: the database or an open transaction. */
export type Executor = Kysely<Database> | Transaction<Database>

/** Runs `work` in the caller's transaction when there is one, else in a new one. */
export function inTransaction<T>(db: Executor, work: (tx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.isTransaction ? work(db as Transaction<Database>) : db.transaction().execute(work)
}
