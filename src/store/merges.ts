import type { Selectable } from 'kysely'
import { newId } from '../domain/ids.js'
import type { Contact, MatchKey } from '../domain/merge.js'
import { type Executor, insertRows, type MergesTable } from './database.js'

export type MergeRecord = Omit<Selectable<MergesTable>, 'mergedProspectIds' | 'keys' | 'skippedKeys'> & {
  mergedProspectIds: string[]
  keys: MatchKey[]
  skippedKeys: (Contact & { type: string })[]
}

export async function insertMerges(db: Executor, records: Omit<MergeRecord, 'id'>[]): Promise<void> {
  await insertRows(
    db,
    'merges',
    records.map((record) => ({
      ...record,
      id: newId(record.at),
      mergedProspectIds: JSON.stringify(record.mergedProspectIds),
      keys: JSON.stringify(record.keys),
      skippedKeys: JSON.stringify(record.skippedKeys),
    })),
  )
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
