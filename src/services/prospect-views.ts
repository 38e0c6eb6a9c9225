import { INDUSTRIES, type Industry } from '../domain/industries.js'
import { providerKeyOf } from '../domain/scopes.js'
import { toAgent } from '../http/schemas/agent.js'
import { iso } from '../http/schemas/common.js'
import type { LeadStatusView } from '../http/schemas/lead.js'
import type { InteractionView, ProspectView } from '../http/schemas/prospect.js'
import { findAccount } from '../store/accounts.js'
import { type Executor, reusable } from '../store/database.js'
import type { Interaction } from '../store/interactions.js'
import { findLeadsOfProspects, type Lead } from '../store/leads.js'
import type { Prospect } from '../store/prospects.js'
import { userFromRow } from '../store/users.js'

/**
 * Prospects as the API shows them (api.md §3.3), with their leads as LeadData. Everything a page
 * needs is loaded in one query per table (groups, agents, leads, integrations), never per item.
 * `leads` narrows one prospect's list (a lead POST that merged answers with only that lead);
 * `theirLeads` are the prospects' leads read already, in id order (others among them are left out).
 */
export async function viewProspects(
  db: Executor,
  prospects: Prospect[],
  options: { additionalData: boolean; leads?: Lead[]; theirLeads?: Lead[]; merged?: boolean },
): Promise<ProspectView[]> {
  const first = prospects[0]
  if (!first) return []
  const ids = prospects.map((p) => p.id)
  const shown = new Set(ids)
  const groupIds = [...new Set(prospects.flatMap((p) => [p.groupId, p.initialGroupId]))]
  const agentIds = [...new Set(prospects.flatMap((p) => (p.agentId ? [p.agentId] : [])))]
  const [account, groups, agents, leads] = await Promise.all([
    findAccount(db, first.accountId),
    groupNames(db, { ids: groupIds }).then((r) => r.rows),
    agentIds.length ? usersByIds(db, { ids: agentIds }).then((r) => r.rows) : [],
    options.leads ??
      options.theirLeads?.filter((lead) => shown.has(lead.prospectId as string)) ??
      findLeadsOfProspects(db, ids),
  ])
  const groupName = new Map(groups.map((g) => [g.id, g.name]))
  const agentOf = new Map(agents.map((a) => [a.id, toAgent(userFromRow(a))]))
  const leadViews = await viewLeads(db, leads)
  const leadsOf = new Map<string, typeof leadViews>()
  leads.forEach((lead, i) => {
    const key = options.leads ? first.id : (lead.prospectId as string)
    leadsOf.set(key, [...(leadsOf.get(key) ?? []), leadViews[i] as (typeof leadViews)[number]])
  })
  return prospects.map((prospect) => {
    const details = prospect.details as { nin?: ProspectView['nin'] }
    const agent = prospect.agentId ? agentOf.get(prospect.agentId) : undefined
    return {
      id: prospect.id,
      created: iso(prospect.createdAt),
      account: account?.name ?? '',
      accountId: prospect.accountId,
      group: groupName.get(prospect.groupId) ?? '',
      groupId: prospect.groupId,
      initialGroup: groupName.get(prospect.initialGroupId) ?? '',
      initialGroupId: prospect.initialGroupId,
      firstName: prospect.firstName,
      ...(prospect.lastName ? { lastName: prospect.lastName } : {}),
      status: prospect.status,
      category: prospect.category,
      ...(prospect.label ? { label: prospect.label } : {}),
      ...(details.nin ? { nin: details.nin } : {}),
      phones: prospect.phones.map((p) => p.value),
      emails: prospect.emails.map((e) => e.value),
      contactMediums: [
        ...prospect.phones.map((p) => ({ id: p.key, type: 'phone', mediumId: p.value })),
        ...prospect.emails.map((e) => ({ id: e.key, type: 'email', mediumId: e.value })),
      ],
      ...(options.additionalData ? { additionalData: prospect.additionalData } : {}),
      ...(options.merged !== undefined ? { merged: options.merged } : {}),
      leads: leadsOf.get(prospect.id) ?? [],
      ...(agent ? { agent } : {}),
      ...(prospect.assignedAt ? { assigned: iso(prospect.assignedAt) } : {}),
      transferredAt: iso(prospect.transferredAt),
      ...(prospect.absenceMessage ? { absenceMessage: prospect.absenceMessage } : {}),
      ...(prospect.archivingReason ? { archivingReason: prospect.archivingReason } : {}),
      userMade: prospect.userMade,
      ...(prospect.previousProspectId ? { previousProspectId: prospect.previousProspectId } : {}),
    }
  })
}

export async function viewProspect(
  db: Executor,
  prospect: Prospect,
  options: { additionalData: boolean; leads?: Lead[]; merged?: boolean },
): Promise<ProspectView> {
  const [view] = await viewProspects(db, [prospect], options)
  return view as ProspectView
}

/**
 * A prospect seen from a key that cannot see it: a lead of that key merged into a prospect of
 * another group of the account (merging is account-wide). The answer keeps the prospect's id and
 * the lead just sent, and what that lead itself said; never the other group's names, contacts,
 * agent or data.
 */
export function viewFromOutside(view: ProspectView, lead: Lead): ProspectView {
  const {
    lastName: _l,
    label: _b,
    nin: _n,
    agent: _a,
    assigned: _s,
    additionalData: _d,
    absenceMessage: _m,
    archivingReason: _r,
    ...rest
  } = view
  return {
    ...rest,
    firstName: lead.body.firstName ?? '',
    ...(lead.body.lastName ? { lastName: lead.body.lastName } : {}),
    phones: [],
    emails: [],
    contactMediums: [],
  }
}

async function viewLeads(db: Executor, leads: Lead[]) {
  const integrationIds = [...new Set(leads.map((l) => l.integrationId))]
  const integrations = integrationIds.length
    ? (await integrationScopes(db, { ids: integrationIds })).rows
    : []
  const providerKeys = new Map(integrations.map((i) => [i.id, providerKeyOf(JSON.parse(i.scopes))]))
  return leads.map((lead) => {
    const { utmMedium, utmCampaign } = lead.body
    return {
      ...lead.body,
      id: lead.id,
      created: iso(lead.receivedAt),
      type: INDUSTRIES[lead.industry as Industry],
      providerKey: providerKeys.get(lead.integrationId) ?? '',
      source: lead.body.utmSource,
      ...(utmMedium ? { medium: utmMedium } : {}),
      ...(utmCampaign ? { campaign: utmCampaign } : {}),
      phones: lead.body.phones ?? [],
      emails: lead.body.emails ?? [],
    }
  })
}

/** Interactions as the API shows them (api.md §4), with the agent who performed each; one query for the agents. */
export async function viewInteractions(
  db: Executor,
  interactions: Interaction[],
): Promise<InteractionView[]> {
  const agentIds = [...new Set(interactions.flatMap((i) => (i.agentId ? [i.agentId] : [])))]
  const agents = agentIds.length ? (await usersByIds(db, { ids: agentIds })).rows : []
  const agentOf = new Map(agents.map((a) => [a.id, toAgent(userFromRow(a))]))
  return interactions.map((interaction) => {
    const agent = interaction.agentId ? agentOf.get(interaction.agentId) : undefined
    return { ...viewInteraction(interaction), ...(agent ? { agent } : {}) }
  })
}

export function viewInteraction(interaction: Interaction): InteractionView {
  return {
    id: interaction.id,
    prospectId: interaction.prospectId,
    ...(interaction.agentId ? { agentId: interaction.agentId } : {}),
    createdAt: iso(interaction.createdAt),
    status: interaction.status,
    proactive: interaction.proactive,
    via: interaction.via,
    output: interaction.output,
  }
}

/** A lead's processing state (api.md §2.2 status, and the `lead` object of `leads` webhooks). */
export function viewLeadStatus(lead: Lead): LeadStatusView {
  return {
    id: lead.id,
    status: lead.status,
    receivedAt: iso(lead.receivedAt),
    ...(lead.processedAt ? { processedAt: iso(lead.processedAt) } : {}),
    ...(lead.prospectId ? { prospectId: lead.prospectId, merged: lead.merged } : {}),
    ...(lead.error ? { error: lead.error } : {}),
  }
}

/** Every view reads these, a page or a webhook at a time: compiled once (`reusable`). */
const groupNames = reusable((db, v: { ids: string[] }) =>
  db.selectFrom('groups').select(['id', 'name']).where('id', 'in', v.ids),
)
const usersByIds = reusable((db, v: { ids: string[] }) =>
  db.selectFrom('users').selectAll().where('id', 'in', v.ids),
)
const integrationScopes = reusable((db, v: { ids: string[] }) =>
  db.selectFrom('integrations').select(['id', 'scopes']).where('id', 'in', v.ids),
)
