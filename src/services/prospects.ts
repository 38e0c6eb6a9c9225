import { interactionOf } from '../domain/interactions.js'
import { assessContacts } from '../domain/lead.js'
import { chooseSurvivor, matchable } from '../domain/merge.js'
import { fail, ok, type Result } from '../domain/result.js'
import type { NewEvent as NewEventInput } from '../http/schemas/lead.js'
import { findBlockedValues } from '../store/accounts.js'
import type { Db, Tx } from '../store/database.js'
import { findGroup, isInSubtree } from '../store/groups.js'
import type { Integration } from '../store/integrations.js'
import type { Interaction } from '../store/interactions.js'
import { lockProspects, type Prospect, resolveSurvivor } from '../store/prospects.js'
import { newInteraction, ProspectChanges, prospectEvent, withRaceRetry } from './merging.js'
import { decideRouting } from './routing.js'
import { findVisibleGroup } from './visibility.js'

/**
 * Changes to prospects through the API (api.md §3): update (which may merge), delete, transfer,
 * and new interactions. Each runs in one transaction with its events; a merged-away id acts on its
 * survivor, as GET does; a prospect outside the key's group subtree does not exist.
 */
async function visibleForChange(
  changes: ProspectChanges,
  tx: Tx,
  integration: Integration,
  id: string,
): Promise<Prospect | undefined> {
  const found = await resolveSurvivor(tx, integration.accountId, id)
  if (!found) return undefined
  // Decide on the locked row: a DELETE or a merge committed in between must be seen.
  const [locked] = await lockProspects(tx, integration.accountId, [found.id])
  if (!locked || locked.deletedAt !== null || !(await isInSubtree(tx, integration.groupId, locked.groupId)))
    return undefined
  return changes.track(locked)
}

/** Writes a changed prospect with the interactions and events its changes gathered. */
async function commit(changes: ProspectChanges, prospect: Prospect, at: number): Promise<Prospect> {
  prospect.updatedAt = at
  changes.save(prospect)
  await changes.flush(at)
  return prospect
}

export type ProspectPatch = {
  firstName?: string
  lastName?: string
  label?: string
  archivingReason?: string
  phone?: string
  email?: string
}

/**
 * PATCH /prospect/{id}. Names and labels are set; a phone or email is added, and when another
 * active prospect already holds it the two are one person: the merge rules run (the oldest
 * survives, and the answer is the survivor).
 */
export async function updateProspect(
  db: Db,
  integration: Integration,
  id: string,
  patch: ProspectPatch,
  at: number,
): Promise<Result<Prospect>> {
  return withRaceRetry(db, async (tx) => {
    const changes = new ProspectChanges(tx)
    const prospect = await visibleForChange(changes, tx, integration, id)
    if (!prospect) return fail('NOT_FOUND', 'Prospect not found')
    const group = await findGroup(tx, prospect.accountId, prospect.groupId)
    const contacts = assessContacts(
      {
        phones: patch.phone === undefined ? [] : [patch.phone],
        emails: patch.email === undefined ? [] : [patch.email],
      },
      group?.countryCode ?? 'BR',
      await findBlockedValues(tx, prospect.accountId),
    )
    // Only the contacts given are judged: an update needs no contact at all, unlike a lead.
    const refused = contacts.problems.find((p) => p.path === '/phones/0' || p.path === '/emails/0')
    if (refused) return fail('INVALID', refused.message, refused.path === '/phones/0' ? '/phone' : '/email')

    const { phones, emails, keys } = matchable(contacts)
    await changes.load(prospect.accountId, keys)
    const { holders, candidates } = changes.holdersOf(prospect.accountId, keys)
    const others = candidates.filter((c) => c.id !== prospect.id)
    // Merging is account-wide, but a key must not reach, or fold its prospect into, one it cannot see.
    for (const other of others) {
      if (!(await isInSubtree(tx, integration.groupId, other.groupId))) {
        const path = patch.phone !== undefined ? '/phone' : '/email'
        return fail(
          'CONFLICT',
          'this contact belongs to a prospect outside this key’s groups; it was not added',
          path,
        )
      }
    }
    const survivor = chooseSurvivor([prospect, ...others])
    const losers = [prospect, ...others].filter((p) => p.id !== survivor.id)
    const skipped = []
    for (const loser of losers) skipped.push(...changes.absorb(survivor, loser, at))
    skipped.push(
      ...changes.attach(survivor, { firstName: '', lastName: '', details: {} }, { phones, emails }),
    )
    // The patch applies to the survivor: when the prospect named was newer, it is now a tombstone.
    for (const field of ['firstName', 'lastName', 'label', 'archivingReason'] as const) {
      if (patch[field] !== undefined) Object.assign(survivor, { [field]: patch[field] })
    }
    if (losers.length > 0 || skipped.length > 0) {
      changes.recordMerge({
        accountId: survivor.accountId,
        survivorId: survivor.id,
        mergedProspectIds: losers.map((l) => l.id),
        leadId: null,
        keys: holders
          .filter((h) => h.prospectId !== survivor.id || losers.length > 0)
          .map(({ type, value }) => ({ type, value })),
        skippedKeys: skipped,
        at,
      })
    }
    changes.events.push(
      prospectEvent(
        survivor,
        losers.length > 0 ? 'merged' : 'updated',
        losers.length > 0 ? { mergedProspectIds: losers.map((l) => l.id) } : {},
      ),
    )
    return ok(await commit(changes, survivor, at))
  })
}

/** DELETE /prospect/{id}: gone from every read; its keys are released, so a new lead starts afresh. */
export async function deleteProspect(
  db: Db,
  integration: Integration,
  id: string,
  at: number,
): Promise<Result<Prospect>> {
  return withRaceRetry(db, async (tx) => {
    const changes = new ProspectChanges(tx)
    const prospect = await visibleForChange(changes, tx, integration, id)
    if (!prospect) return fail('NOT_FOUND', 'Prospect not found')
    await tx.updateTable('prospectKeys').set({ active: 0 }).where('prospectId', '=', prospect.id).execute()
    prospect.deletedAt = at
    changes.events.push(prospectEvent(prospect, 'deleted'))
    return ok(await commit(changes, prospect, at))
  })
}

/**
 * POST /prospect/{id}/transfer: into another group of the key's subtree, whose distribution then
 * decides the agent and the status (as for a new prospect), with an interaction and events.
 */
export async function transferProspect(
  db: Db,
  integration: Integration,
  id: string,
  groupId: string,
  at: number,
): Promise<Result<Prospect>> {
  return withRaceRetry(db, async (tx) => {
    const changes = new ProspectChanges(tx)
    const prospect = await visibleForChange(changes, tx, integration, id)
    if (!prospect) return fail('NOT_FOUND', 'Prospect not found')
    const target = await findVisibleGroup(tx, integration, groupId)
    if (!target) return fail('NOT_FOUND', 'Group not found')
    const routing = await decideRouting(tx, target, undefined, at)
    Object.assign(prospect, {
      groupId: target.id,
      transferredAt: at,
      status: routing.status,
      agentId: routing.agentId,
      assignedAt: routing.agentId ? at : null,
      absenceMessage: routing.absenceMessage,
    })
    const output = {
      transferedTo: target.name,
      transferedToGroupId: target.id,
      ...(routing.agentId ? { transferedToAgentId: routing.agentId } : {}),
    }
    changes.events.push(prospectEvent(prospect, 'transferred', { groupId: target.id }))
    changes.interactions.push(newInteraction(prospect, null, { via: 'other', output }, null, at))
    if (routing.agentId)
      changes.events.push(
        prospectEvent(prospect, 'assigned', { agentId: routing.agentId, rule: routing.rule }),
      )
    return ok(await commit(changes, prospect, at))
  })
}

/** POST /prospect/{id}/interactions: a NewEvent recorded as performed by the integration. */
export async function addInteraction(
  db: Db,
  integration: Integration,
  id: string,
  event: NewEventInput,
  at: number,
): Promise<Result<Interaction>> {
  return withRaceRetry(db, async (tx) => {
    const changes = new ProspectChanges(tx)
    const prospect = await visibleForChange(changes, tx, integration, id)
    if (!prospect) return fail('NOT_FOUND', 'Prospect not found')
    const interaction = newInteraction(prospect, null, interactionOf(event, undefined), null, at)
    const snapshot = {
      id: interaction.id,
      prospectId: prospect.id,
      via: interaction.via,
      output: interaction.output,
    }
    changes.interactions.push(interaction)
    prospect.sequence += 1
    changes.events.push({
      accountId: prospect.accountId,
      groupId: prospect.groupId,
      topic: 'interactions',
      type: 'created',
      subjectId: prospect.id,
      sequence: prospect.sequence,
      payload: { prospect: { id: prospect.id }, interaction: snapshot },
    })
    await commit(changes, prospect, at)
    return ok(interaction)
  })
}
