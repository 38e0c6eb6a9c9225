import { signatureHeader } from '../domain/signature.js'
import { iso } from '../http/schemas/common.js'
import type { ProspectView } from '../http/schemas/prospect.js'
import {
  viewFromOutside,
  viewInteractions,
  viewLeadStatus,
  viewProspects,
} from '../services/prospect-views.js'
import type { Executor } from '../store/database.js'
import type { StoredEvent } from '../store/events.js'
import { findInteractionsByIds } from '../store/interactions.js'
import { findLeadsByIds, findLeadsOfProspects, type Lead } from '../store/leads.js'
import { findProspectsByIds } from '../store/prospects.js'
import { type Subscription, signingSecrets } from '../store/subscriptions.js'
import type { LeasedDelivery } from './dispatcher.js'

/**
 * What a delivery carries besides the envelope (webhooks.md §1, §3): the topic's objects as the
 * API shows them, `updatedAt`, and the event's own facts (`mergedInto`, `mergedProspectIds`…).
 * Objects are rendered once, when the event is dispatched (normally milliseconds after the change),
 * and stored with it, so every subscription and every retry sends the same objects. Webhooks never
 * carry `additionalData` (it needs a scope of its own).
 */
export type EventBody = { full: string; outside?: { prospectGroupId: string; body: string } }

export async function renderEventBodies(
  db: Executor,
  events: StoredEvent[],
): Promise<Map<string, EventBody>> {
  const prospectIds = new Set<string>()
  const leadIds: string[] = []
  const interactionIds: string[] = []
  for (const event of events) {
    const payload = event.payload as Payload
    const prospectId = payload.prospect?.id ?? payload.prospectId
    if (prospectId) prospectIds.add(prospectId)
    if (event.topic === 'leads') leadIds.push(event.subjectId)
    if (payload.interaction?.id) interactionIds.push(payload.interaction.id)
  }
  // A lead event's lead is normally one of its prospect's leads, which the view reads anyway:
  // only the others (rejected, or moved to another prospect since) are read by id.
  const [prospects, theirLeads, interactions] = await Promise.all([
    findProspectsByIds(db, [...prospectIds]),
    findLeadsOfProspects(db, [...prospectIds]),
    findInteractionsByIds(db, interactionIds),
  ])
  const leadOf = new Map(theirLeads.map((l) => [l.id, l]))
  for (const lead of await findLeadsByIds(
    db,
    leadIds.filter((id) => !leadOf.has(id)),
  ))
    leadOf.set(lead.id, lead)
  // One render per account: viewProspects reads one account.
  const views = new Map<string, ProspectView>()
  for (const accountId of new Set(prospects.map((p) => p.accountId))) {
    const ofAccount = prospects.filter((p) => p.accountId === accountId)
    const rendered = await viewProspects(db, ofAccount, { additionalData: false, theirLeads })
    for (const view of rendered) views.set(view.id, view)
  }
  const prospectOf = new Map(prospects.map((p) => [p.id, p]))
  const interactionOf = new Map((await viewInteractions(db, interactions)).map((view) => [view.id, view]))

  const bodies = new Map<string, EventBody>()
  for (const event of events) {
    const {
      prospect: _snapshot,
      prospectId: _id,
      lead: _lead,
      interaction: _interaction,
      ...facts
    } = event.payload as Payload
    const id = (event.payload as Payload).prospect?.id ?? (event.payload as Payload).prospectId
    const prospect = id ? prospectOf.get(id) : undefined
    const view = id ? views.get(id) : undefined
    const lead = event.topic === 'leads' ? leadOf.get(event.subjectId) : undefined
    const interactionId = (event.payload as Payload).interaction?.id
    const interaction = interactionId ? interactionOf.get(interactionId) : undefined
    const updatedAt = prospect?.updatedAt ?? lead?.processedAt ?? event.createdAt
    const objects = (shown: ProspectView | undefined) =>
      JSON.stringify({
        updatedAt: iso(updatedAt),
        ...(shown ? { prospect: shown } : {}),
        ...(interaction ? { interaction } : {}),
        ...(lead ? { lead: viewLeadStatus(lead) } : {}),
        ...facts,
      })
    const body: EventBody = { full: objects(view) }
    // A lead merged into a prospect of another group: subscriptions that cannot see that group get
    // what the lead's own key would get in the v1 answer.
    if (lead && prospect && view && prospect.groupId !== lead.groupId)
      body.outside = { prospectGroupId: prospect.groupId, body: objects(viewFromOutside(view, lead as Lead)) }
    bodies.set(event.id, body)
  }
  return bodies
}

type Payload = {
  prospect?: { id: string }
  prospectId?: string
  lead?: unknown
  interaction?: { id: string }
  [fact: string]: unknown
}

/**
 * The exact bytes of one attempt: the envelope's fields, then the stored objects. Built by
 * joining JSON text, so the (possibly large) objects are not parsed again on every attempt.
 */
export function envelope(
  head: {
    subscriptionId: string
    topic: string
    type: string
    operationId: string
    received: number
    sent: number
    attempts: number
    sequence: number | null
  },
  objects: string,
): string {
  const fields = JSON.stringify({
    subscriptionId: head.subscriptionId,
    topic: head.topic,
    type: head.type,
    operationId: head.operationId,
    received: iso(head.received),
    sent: iso(head.sent),
    attempts: head.attempts,
    ...(head.sequence === null ? {} : { sequence: head.sequence }),
  })
  return objects === '{}' ? fields : `${fields.slice(0, -1)},${objects.slice(1)}`
}

/**
 * What one attempt of a delivery sends, sent at `sentAt`: the envelope, and the headers that
 * identify and sign it (webhooks.md §3), over the exact bytes of the body.
 */
export function signedRequest(
  work: LeasedDelivery & { subscription: Subscription },
  sentAt: number,
): { body: string; headers: Record<string, string> } {
  const { delivery, subscription } = work
  const body = envelope(
    {
      subscriptionId: subscription.id,
      topic: delivery.topic,
      type: delivery.type,
      operationId: delivery.eventId,
      received: work.received,
      sent: sentAt,
      attempts: delivery.attempts + 1,
      sequence: work.sequence,
    },
    work.objects,
  )
  const timestamp = Math.floor(sentAt / 1000)
  const signature = signatureHeader(signingSecrets(subscription, sentAt), delivery.eventId, timestamp, body)
  return {
    body,
    headers: {
      'webhook-id': delivery.eventId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signature,
    },
  }
}
