/**
 * The baseline servers of the HTTP benchmarks. Prints its port. Usage:
 *   node --import tsx bench/bare.ts          a bare Fastify route answering a constant JSON, with
 *                                            no auth, validation or storage;
 *   node --import tsx bench/bare.ts --check  the same route doing Ventas's own CPU work on each
 *                                            lead (schema validation, aliases, phone and email
 *                                            parsing, request hash) but no auth and no storage:
 *                                            the most an accept could reach with a free database.
 */
import Fastify from 'fastify'
import { LEAD_SCHEMAS, type LeadInput } from '../src/http/schemas/lead.js'
import { validatorCompiler } from '../src/http/validation.js'
import { createAccount } from '../src/services/directory.js'
import { checkLead } from '../src/services/intake.js'
import { createTestApp } from '../test/helper.js'

const check = process.argv.includes('--check')
const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 })
const answer = { id: '6745a1f0c2b4e5d6a7b8c9d0', status: 'queued' }
if (!check) {
  app.post('/v2/leads/retail', async (_request, reply) => reply.status(202).send(answer))
} else {
  // The group and integration a real accept reads from the database, read once here.
  const t = await createTestApp()
  const created = await createAccount(t.db, { name: 'Bench', countryCode: 'BR' })
  if (!created.ok) throw new Error(created.message)
  const { account, group } = created.value
  const integration = { id: 'bench', accountId: account.id, groupId: group.id } as Parameters<
    typeof checkLead
  >[1]['integration']
  await t.close()
  app.setValidatorCompiler(validatorCompiler)
  app.post('/v2/leads/retail', { schema: { body: LEAD_SCHEMAS.retail } }, async (request, reply) => {
    const checked = checkLead(request.body as LeadInput, {
      integration,
      group,
      industry: 'retail',
      blocked: new Set(),
      at: Date.now(),
    })
    if (!checked.ok) return reply.status(422).send(checked.refusal)
    return reply.status(202).send({ id: checked.lead.id, status: checked.lead.status })
  })
}
await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
console.log(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }))
process.on('SIGTERM', () => app.close().then(() => process.exit(0)))
