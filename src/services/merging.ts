import { newId } from '../domain/ids.js'
import {
  type Contact,
  fillEmpty,
  MAX_EMAILS,
  MAX_PHONES,
  type MatchKey,
  type ProspectFields,
  unionContacts,
} from '../domain/merge.js'
import { engineOf } from '../store/connect.js'
import type { Db, Tx as Transaction } from '../store/database.js'
import type { NewEvent } from '../store/events.js'
import { type Interaction, moveInteractions } from '../store/interactions.js'
import {
  findKeyHolders,
  linkKeys,
  lockProspects,
  moveKeys,
  type Prospect,
  saveProspect,
} from '../store/prospects.js'

/** A concurrent worker changed the prospects this lead touches; the transaction starts over. */
export class RaceLost extends Error {}

const RACE_CODES = new Set(['23505', '40P01', '40001']) // unique violation, deadlock, serialization failure

function isRace(error: unknown): boolean {
  return error instanceof RaceLost || RACE_CODES.has((error as { code?: string }).code ?? '')
}

/**
 * Runs `work` in a transaction, again when it lost a race to a concurrent writer (the active-key
 * unique index refused a key, a locked prospect was merged away, PostgreSQL chose it as a deadlock
 * victim): the next attempt sees the winner's change and merges with it instead.
 */
export async function withRaceRetry<T>(db: Db, work: (tx: Transaction) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(work)
    } catch (error) {
      if (attempt < 10 && isRace(error)) continue
      throw error
    }
  }
}

/**
 * The active prospects holding any of `keys`, locked for change (PostgreSQL row locks, in id
 * order). Between the key lookup and the locks another writer may have merged or re-keyed them;
 * then the lookup no longer agrees with the locked rows and the transaction starts over.
 */
export async function lockKeyHolders(tx: Transaction, accountId: string, keys: MatchKey[]) {
  const holders = await findKeyHolders(tx, accountId, keys)
  const ids = [...new Set(holders.map((h) => h.prospectId))].sort()
  const candidates = await lockProspects(tx, accountId, ids)
  if (engineOf(tx) === 'postgres') {
    const again = [...new Set((await findKeyHolders(tx, accountId, keys)).map((h) => h.prospectId))].sort()
    if (again.join() !== candidates.map((c) => c.id).join()) throw new RaceLost()
  }
  return { holders, candidates }
}

/**
 * The merge steps shared by lead processing and prospect updates (identity.md §4): fold one
 * prospect into another, attach new contacts, and the interactions and events that record it.
 */
export type Change = { events: NewEvent[]; interactions: Interaction[] }

/**
 * Folds `loser` into `survivor` (identity.md §4.3–4.6): unions of contacts under the cap (keys
 * past it are unlinked), empty fields filled, the agent kept unless the survivor has none, leads
 * and interactions moved, the loser left as a tombstone. Returns the contacts the cap dropped.
 */
export async function absorb(
  tx: Transaction,
  survivor: Prospect,
  loser: Prospect,
  change: Change,
  at: number,
) {
  const phones = unionContacts(survivor.phones, loser.phones, MAX_PHONES)
  const emails = unionContacts(survivor.emails, loser.emails, MAX_EMAILS)
  const dropped = [...phones.skipped, ...emails.skipped]
  await moveKeys(
    tx,
    loser.id,
    survivor.id,
    dropped.map((c) => c.key),
  )
  await tx.updateTable('leads').set({ prospectId: survivor.id }).where('prospectId', '=', loser.id).execute()
  await moveInteractions(tx, loser.id, survivor.id)
  Object.assign(survivor, fillEmpty(survivor, loser), { phones: phones.contacts, emails: emails.contacts })
  if (!survivor.agentId && loser.agentId)
    Object.assign(survivor, { agentId: loser.agentId, assignedAt: loser.assignedAt, status: loser.status })
  Object.assign(loser, { mergedInto: survivor.id, updatedAt: at })
  change.events.push(prospectEvent(loser, 'deleted', { mergedInto: survivor.id }))
  await saveProspect(tx, loser)
  return [
    ...phones.skipped.map((c) => ({ ...c, type: 'phone' })),
    ...emails.skipped.map((c) => ({ ...c, type: 'email' })),
  ]
}

/** Adds a lead's fields and contacts to an existing prospect; returns the contacts the cap dropped. */
export async function attach(
  tx: Transaction,
  prospect: Prospect,
  fields: ProspectFields,
  contacts: { phones: Contact[]; emails: Contact[] },
) {
  const phones = unionContacts(prospect.phones, contacts.phones, MAX_PHONES)
  const emails = unionContacts(prospect.emails, contacts.emails, MAX_EMAILS)
  Object.assign(prospect, fillEmpty(prospect, fields), { phones: phones.contacts, emails: emails.contacts })
  await linkKeys(tx, prospect.accountId, prospect.id, [
    ...phones.linked.map((c) => ({ type: 'phone' as const, key: c.key })),
    ...emails.linked.map((c) => ({ type: 'email' as const, key: c.key })),
  ])
  return [
    ...phones.skipped.map((c) => ({ ...c, type: 'phone' })),
    ...emails.skipped.map((c) => ({ ...c, type: 'email' })),
  ]
}

export function newInteraction(
  prospect: Prospect,
  leadId: string | null,
  what: { via: string; output: Record<string, unknown> },
  agentId: string | null,
  at: number,
): Interaction {
  return {
    id: newId(at),
    accountId: prospect.accountId,
    prospectId: prospect.id,
    leadId,
    agentId,
    via: what.via,
    status: 'created',
    output: what.output,
    proactive: false,
    createdAt: at,
  }
}

/** A `prospects` event with a compact snapshot; bumps the prospect's sequence so receivers can order events. */
export function prospectEvent(
  prospect: Prospect,
  type: string,
  extra: Record<string, unknown> = {},
): NewEvent {
  prospect.sequence += 1
  const snapshot = {
    id: prospect.id,
    groupId: prospect.groupId,
    status: prospect.status,
    firstName: prospect.firstName,
    lastName: prospect.lastName,
    phones: prospect.phones.map((p) => p.value),
    emails: prospect.emails.map((e) => e.value),
    agentId: prospect.agentId,
    category: prospect.category,
  }
  return {
    accountId: prospect.accountId,
    groupId: prospect.groupId,
    topic: 'prospects',
    type,
    subjectId: prospect.id,
    sequence: prospect.sequence,
    payload: { prospect: snapshot, ...extra },
  }
}
