import type { Selectable } from 'kysely'
import type { Executor, InteractionsTable } from './database.js'

export type Interaction = Omit<Selectable<InteractionsTable>, 'output' | 'proactive'> & {
  output: Record<string, unknown>
  proactive: boolean
}

export async function insertInteractions(db: Executor, interactions: Interaction[]): Promise<void> {
  if (interactions.length === 0) return
  await db
    .insertInto('interactions')
    .values(
      interactions.map((i) => ({ ...i, output: JSON.stringify(i.output), proactive: i.proactive ? 1 : 0 })),
    )
    .execute()
}

function fromRow(row: Selectable<InteractionsTable>): Interaction {
  return { ...row, output: JSON.parse(row.output), proactive: row.proactive === 1 }
}

export async function findInteractionsOfLead(db: Executor, leadId: string): Promise<Interaction[]> {
  return (
    await db.selectFrom('interactions').selectAll().where('leadId', '=', leadId).orderBy('id').execute()
  ).map(fromRow)
}

export async function moveInteractions(db: Executor, fromId: string, toId: string): Promise<void> {
  await db.updateTable('interactions').set({ prospectId: toId }).where('prospectId', '=', fromId).execute()
}
