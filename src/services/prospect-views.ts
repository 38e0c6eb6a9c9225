import { INDUSTRIES, type Industry } from '../domain/industries.js'
import { providerKeyOf } from '../domain/scopes.js'
import { toAgent } from '../http/schemas/agent.js'
import { iso } from '../http/schemas/common.js'
import type { InteractionView, ProspectView } from '../http/schemas/prospect.js'
import { findAccount } from '../store/accounts.js'
import type { Executor } from '../store/database.js'
import { findGroup } from '../store/groups.js'
import { findIntegration } from '../store/integrations.js'
import type { Interaction } from '../store/interactions.js'
import { findLeadsOfProspect, type Lead } from '../store/leads.js'
import type { Prospect } from '../store/prospects.js'
import { findUser } from '../store/users.js'

/**
 * A prospect as the API shows it (api.md §3.3), with its leads as LeadData. `leads` narrows the
 * list (a lead POST that merged answers with only the lead just sent).
 */
export async function viewProspect(
  db: Executor,
  prospect: Prospect,
  options: { additionalData: boolean; leads?: Lead[]; merged?: boolean },
): Promise<ProspectView> {
  const [account, group, initialGroup, agent, leads] = await Promise.all([
    findAccount(db, prospect.accountId),
    findGroup(db, prospect.accountId, prospect.groupId),
    findGroup(db, prospect.accountId, prospect.initialGroupId),
    prospect.agentId ? findUser(db, prospect.accountId, prospect.agentId) : undefined,
    options.leads ?? findLeadsOfProspect(db, prospect.id),
  ])
  const details = prospect.details as { nin?: ProspectView['nin'] }
  return {
    id: prospect.id,
    created: iso(prospect.createdAt),
    account: account?.name ?? '',
    accountId: prospect.accountId,
    group: group?.name ?? '',
    groupId: prospect.groupId,
    initialGroup: initialGroup?.name ?? '',
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
    leads: await viewLeads(db, leads),
    ...(agent ? { agent: toAgent(agent) } : {}),
    ...(prospect.assignedAt ? { assigned: iso(prospect.assignedAt) } : {}),
    transferredAt: iso(prospect.transferredAt),
    ...(prospect.absenceMessage ? { absenceMessage: prospect.absenceMessage } : {}),
    ...(prospect.archivingReason ? { archivingReason: prospect.archivingReason } : {}),
    userMade: prospect.userMade,
    ...(prospect.previousProspectId ? { previousProspectId: prospect.previousProspectId } : {}),
  }
}

async function viewLeads(db: Executor, leads: Lead[]) {
  const providerKeys = new Map<string, string>()
  for (const id of new Set(leads.map((l) => l.integrationId))) {
    const integration = await findIntegration(db, id)
    providerKeys.set(id, integration ? providerKeyOf(integration.scopes) : '')
  }
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
