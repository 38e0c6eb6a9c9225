import type { Selectable } from 'kysely'
import { newId } from '../domain/ids.js'
import type { Contact, MatchKey } from '../domain/merge.js'
import type { Executor, MergesTable } from './database.js'

export type MergeRecord = Omit<Selectable<MergesTable>, 'mergedProspectIds' | 'keys' | 'skippedKeys'> & {
  mergedProspectIds: string[]
  keys: MatchKey[]
  skippedKeys: (Contact & { type: string })[]
}

export async function insertMerge(db: Executor, record: Omit<MergeRecord, 'id'>): Promise<MergeRecord> {
  const row = { ...record, id: newId(record.at) }
  await db
    .insertInto('merges')
    .values({
      ...row,
      mergedProspectIds: JSON.stringify(row.mergedProspectIds),
      keys: JSON.stringify(row.keys),
      skippedKeys: JSON.stringify(row.skippedKeys),
    })
    .execute()
  return row
}

export async function findMerges(db: Executor, survivorId: string): Promise<MergeRecord[]> {
  const rows = await db
    .selectFrom('merges')
    .selectAll()
    .where('survivorId', '=', survivorId)
    .orderBy('at')
    .orderBy('id')
    .execute()
  return rows.map((r) => ({
    ...r,
    mergedProspectIds: JSON.parse(r.mergedProspectIds),
    keys: JSON.parse(r.keys),
    skippedKeys: JSON.parse(r.skippedKeys),
  }))
}
