import type { NewEvent } from '../http/schemas/lead.js'

/** The channel a message came through, from the lead's provider (api.md §4 `via`). */
export function channelOf(provider: string | undefined): string {
  const known: Record<string, string> = {
    whatsapp: 'whatsApp',
    instagram: 'instagram',
    facebook: 'facebook',
    sms: 'sms',
    email: 'email',
  }
  return known[(provider ?? '').toLowerCase()] ?? 'other'
}

/**
 * A NewEvent as an interaction's `via` and `output` (api.md §4). A note answers as
 * `output.comment`, as the original does; a message from a lead is performed by the integration.
 */
export function interactionOf(
  event: NewEvent,
  provider: string | undefined,
): { via: string; output: Record<string, unknown> } {
  switch (event.type) {
    case 'note':
      return { via: 'other', output: { comment: event.content } }
    case 'call': {
      const { type: _type, ...call } = event
      return { via: 'inboundCall', output: { call } }
    }
    case 'message': {
      const via = channelOf(provider)
      const { type: _type, ...message } = event
      return { via, output: { message: { via, ...message, body: event.content, performer: 'integration' } } }
    }
    case 'question': {
      const { type: _type, ...question } = event
      return { via: 'webAction', output: { question } }
    }
  }
}
