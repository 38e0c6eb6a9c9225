import { newId } from '../domain/ids.js'
import type { Executor } from './database.js'

export type AuditEntry = {
  accountId: string
  /** Who did it: `cli`, `bootstrap`, `user:<id>`, `integration:<id>`. */
  actor: string
  action: string
  subjectType: string
  subjectId: string
  details?: Record<string, unknown>
}

/** Appends to the audit trail in the caller's transaction, so the record and the change commit together. */
export async function recordAudit(db: Executor, entry: AuditEntry, at = Date.now()): Promise<void> {
  await db
    .insertInto('auditLog')
    .values({ ...entry, id: newId(at), at, details: JSON.stringify(entry.details ?? {}) })
    .execute()
}

export async function findAuditTrail(db: Executor, subjectId: string) {
  return db
    .selectFrom('auditLog')
    .selectAll()
    .where('subjectId', '=', subjectId)
    .orderBy('at')
    .orderBy('id')
    .execute()
}
