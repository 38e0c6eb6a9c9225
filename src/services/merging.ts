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
import { appendEvents, type NewEvent } from '../store/events.js'
import { type Interaction, insertInteractions, moveInteractions } from '../store/interactions.js'
import { moveLeads } from '../store/leads.js'
import { insertMerges, type MergeRecord } from '../store/merges.js'
import {
  findKeyHolders,
  insertKeys,
  type KeyRow,
  lockProspects,
  moveKeys,
  type Prospect,
  type ProspectRow,
  prospectRow,
  saveProspects,
} from '../store/prospects.js'

/** A concurrent worker changed the prospects this lead touches; the transaction starts over. */
export class RaceLost extends Error {}

const RACE_CODES = new Set(['23505', '40P01', '40001']) // unique violation, deadlock, serialization failure

export function isRace(error: unknown): boolean {
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

type Tracked = {
  prospect: Prospect
  /** The row as read, so that flush sets only what changed; none for a new prospect. */
  stored: ProspectRow | undefined
  changed: boolean
  /** The agent whose open prospects this one counted in when it was read (leastLoaded). */
  countedFor: string | null
}

const keyId = (accountId: string, key: MatchKey) => `${accountId}\n${key.type}\n${key.value}`

/** The agent an open (not archived, not merged) prospect counts for in leastLoaded routing. */
const countsFor = (p: Prospect) => (p.agentId && p.status !== 'archived' && !p.mergedInto ? p.agentId : null)

/**
 * The prospect changes of one transaction (identity.md §4), made in memory and written at once
 * by `flush`: which prospect holds each match key, the prospects read or created, merges,
 * interactions and events. A batch of leads then costs a few statements instead of fifteen per
 * lead, and a lead later in the batch sees what an earlier one did. Lead processing and prospect
 * updates share it, so the merge steps exist once.
 */
export class ProspectChanges {
  readonly events: NewEvent[] = []
  readonly interactions: Interaction[] = []
  private readonly merges: Omit<MergeRecord, 'id'>[] = []
  private readonly tracked = new Map<string, Tracked>()
  /** The active holder of every key looked up so far, as of now in this transaction (null: none). */
  private readonly holders = new Map<string, string | null>()
  /** Keys linked in this transaction, inserted at flush. */
  private readonly linked = new Map<string, KeyRow>()
  /** Stored prospects merged away: their stored keys, leads and interactions move at flush, in order. */
  private readonly moves: { from: string; to: string; drop: string[] }[] = []
  private readonly mergedInto = new Map<string, string>()

  constructor(private readonly tx: Transaction) {}

  /** A prospect the transaction already read (and locked), from here on changed through this. */
  track(prospect: Prospect): Prospect {
    const known = this.tracked.get(prospect.id)
    if (known) return known.prospect
    this.tracked.set(prospect.id, {
      prospect,
      stored: prospectRow(prospect),
      changed: false,
      countedFor: countsFor(prospect),
    })
    return prospect
  }

  /**
   * Reads which active prospects hold `keys` and loads them, locked on PostgreSQL (in id order,
   * so two workers never lock the same pair in opposite orders). Between the key lookup and the
   * locks another writer may have merged or re-keyed them; then the lookup no longer agrees with
   * the locked rows and the transaction starts over (RaceLost).
   */
  async load(accountId: string, keys: MatchKey[]): Promise<void> {
    const unknown = keys.filter((k) => !this.holders.has(keyId(accountId, k)))
    if (unknown.length === 0) return
    const found = await findKeyHolders(this.tx, accountId, unknown)
    for (const key of unknown) this.holders.set(keyId(accountId, key), null)
    for (const holder of found) this.holders.set(keyId(accountId, holder), holder.prospectId)
    const ids = [...new Set(found.map((h) => h.prospectId))].sort()
    for (const prospect of await lockProspects(
      this.tx,
      accountId,
      ids.filter((id) => !this.tracked.has(id)),
    ))
      this.track(prospect)
    if (engineOf(this.tx) === 'postgres') {
      const again = [...new Set((await findKeyHolders(this.tx, accountId, unknown)).map((h) => h.prospectId))]
      if (again.sort().join() !== ids.join() || ids.some((id) => !this.tracked.has(id))) throw new RaceLost()
    }
  }

  /** The keys' active holders as of now (loaded first) and the distinct prospects holding them, by id. */
  holdersOf(accountId: string, keys: MatchKey[]) {
    const holders: (MatchKey & { prospectId: string })[] = []
    for (const key of keys) {
      const prospectId = this.holders.get(keyId(accountId, key))
      if (prospectId) holders.push({ ...key, prospectId })
    }
    const candidates = [...new Set(holders.map((h) => h.prospectId))]
      .sort()
      .flatMap((id) => this.tracked.get(id)?.prospect ?? [])
    return { holders, candidates }
  }

  /** A new prospect, holding the contacts it was made with. */
  create(prospect: Prospect): Prospect {
    this.tracked.set(prospect.id, { prospect, stored: undefined, changed: true, countedFor: null })
    this.link(prospect, prospect.phones, prospect.emails)
    return prospect
  }

  /** Marks a prospect to be written as it is at flush. */
  save(prospect: Prospect): void {
    this.track(prospect)
    const tracked = this.tracked.get(prospect.id)
    if (tracked) tracked.changed = true
  }

  /**
   * Folds `loser` into `survivor` (identity.md §4.3–4.6): unions of contacts under the cap (keys
   * past it are unlinked), empty fields filled, the agent kept unless the survivor has none, leads
   * and interactions moved, the loser left as a tombstone. Returns the contacts the cap dropped.
   */
  absorb(survivor: Prospect, loser: Prospect, at: number): (Contact & { type: string })[] {
    const phones = unionContacts(survivor.phones, loser.phones, MAX_PHONES)
    const emails = unionContacts(survivor.emails, loser.emails, MAX_EMAILS)
    const drop = new Set([...phones.skipped, ...emails.skipped].map((c) => c.key))
    for (const [id, holder] of this.holders) {
      if (holder === loser.id)
        this.holders.set(id, drop.has(id.slice(id.lastIndexOf('\n') + 1)) ? null : survivor.id)
    }
    for (const [id, row] of this.linked) {
      if (row.prospectId !== loser.id) continue
      if (drop.has(row.keyValue)) this.linked.delete(id)
      else row.prospectId = survivor.id
    }
    if (this.tracked.get(loser.id)?.stored)
      this.moves.push({ from: loser.id, to: survivor.id, drop: [...drop] })
    this.mergedInto.set(loser.id, survivor.id)
    Object.assign(survivor, fillEmpty(survivor, loser), { phones: phones.contacts, emails: emails.contacts })
    if (!survivor.agentId && loser.agentId)
      Object.assign(survivor, { agentId: loser.agentId, assignedAt: loser.assignedAt, status: loser.status })
    Object.assign(loser, { mergedInto: survivor.id, updatedAt: at })
    this.events.push(prospectEvent(loser, 'deleted', { mergedInto: survivor.id }))
    this.save(loser)
    this.save(survivor)
    return [
      ...phones.skipped.map((c) => ({ ...c, type: 'phone' })),
      ...emails.skipped.map((c) => ({ ...c, type: 'email' })),
    ]
  }

  /** Adds fields and contacts to a prospect; returns the contacts the cap dropped. */
  attach(
    prospect: Prospect,
    fields: ProspectFields,
    contacts: { phones: Contact[]; emails: Contact[] },
  ): (Contact & { type: string })[] {
    const phones = unionContacts(prospect.phones, contacts.phones, MAX_PHONES)
    const emails = unionContacts(prospect.emails, contacts.emails, MAX_EMAILS)
    Object.assign(prospect, fillEmpty(prospect, fields), { phones: phones.contacts, emails: emails.contacts })
    this.link(prospect, phones.linked, emails.linked)
    this.save(prospect)
    return [
      ...phones.skipped.map((c) => ({ ...c, type: 'phone' })),
      ...emails.skipped.map((c) => ({ ...c, type: 'email' })),
    ]
  }

  recordMerge(record: Omit<MergeRecord, 'id'>): void {
    this.merges.push(record)
  }

  /** The prospect `id` became, following merges made in this transaction. */
  survivorOf(id: string): string {
    let current = id
    for (let next = this.mergedInto.get(current); next; next = this.mergedInto.get(current)) current = next
    return current
  }

  /** Open prospects each agent gained or lost in this transaction (leastLoaded routing). */
  loadChanges(): Map<string, number> {
    const changes = new Map<string, number>()
    const add = (agentId: string | null, n: number) => {
      if (agentId) changes.set(agentId, (changes.get(agentId) ?? 0) + n)
    }
    for (const { prospect, countedFor } of this.tracked.values()) {
      add(countedFor, -1)
      add(countsFor(prospect), 1)
    }
    return changes
  }

  /**
   * Writes every change: the moves of merged stored prospects first (in the order they merged),
   * then prospects as they now are, new keys (sorted), interactions (on their prospect's
   * survivor, as a move would have put them), merge records and events.
   */
  async flush(at: number): Promise<void> {
    for (const { from, to, drop } of this.moves) {
      await moveKeys(this.tx, from, to, drop)
      await moveLeads(this.tx, from, to)
      await moveInteractions(this.tx, from, to)
    }
    await saveProspects(
      this.tx,
      [...this.tracked.values()].filter((t) => t.changed),
    )
    const byKey = (a: KeyRow, b: KeyRow) =>
      a.keyType < b.keyType ? -1 : a.keyType > b.keyType ? 1 : a.keyValue < b.keyValue ? -1 : 1
    await insertKeys(this.tx, [...this.linked.values()].sort(byKey))
    await insertInteractions(
      this.tx,
      this.interactions.map((i) => ({ ...i, prospectId: this.survivorOf(i.prospectId) })),
    )
    await insertMerges(this.tx, this.merges)
    await appendEvents(this.tx, this.events, at)
  }

  private link(prospect: Prospect, phones: Contact[], emails: Contact[]): void {
    const keys = [
      ...phones.map((c) => ({ type: 'phone' as const, value: c.key })),
      ...emails.map((c) => ({ type: 'email' as const, value: c.key })),
    ]
    for (const key of keys) {
      const id = keyId(prospect.accountId, key)
      this.holders.set(id, prospect.id)
      this.linked.set(id, {
        accountId: prospect.accountId,
        keyType: key.type,
        keyValue: key.value,
        prospectId: prospect.id,
      })
    }
  }
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
