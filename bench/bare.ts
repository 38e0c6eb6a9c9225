/**
 * The baseline servers of the HTTP benchmarks. Prints its port. Usage:
 *   node --import tsx bench/bare.ts          a bare Fastify route answering a constant JSON, with
 *                                            no auth, validation or storage;
 *   node --import tsx bench/bare.ts --check  the same route doing Ventas's own CPU work on each
 *                                            lead (schema validation, aliases, phone and email
 *                                            parsing, request hash) but no auth and no storage:
 *                                            the most an accept could reach with a free database.
 *   RAW_DATABASE_URL=<url> node --import tsx bench/bare.ts --store [--check]
 *                                            the route (with --check, after the checks) answers
 *                                            only once the body is committed as one raw row
 *                                            (bench/raw.ts) in a transaction shared with the
 *                                            requests that arrived meanwhile, at most 64, as
 *                                            Ventas groups its commits: the most an accept could
 *                                            reach with the cheapest durable storage.
 * Each mode also answers `POST /v2/leads/retail/batch` (`{"leads": [...]}`) with one receipt a
 * lead: bare, a constant one; with --check it first checks them on Ventas's own checker thread
 * (src/services/checkers.ts), as a batch is checked; with --store it commits one raw row a lead,
 * the body's rows in one transaction shared as above. With both, the most a batch intake could
 * reach with the cheapest durable storage: no auth, no match keys, no jobs.
 */
import Fastify from 'fastify'
import { LEAD_SCHEMAS, type LeadInput } from '../src/http/schemas/lead.js'
import { validatorCompiler } from '../src/http/validation.js'
import { Checkers } from '../src/services/checkers.js'
import { type CheckContext, checkLead } from '../src/services/checking.js'
import { createAccount } from '../src/services/directory.js'
import { createTestApp } from '../test/helper.js'
import { openRawTable } from './raw.js'

const check = process.argv.includes('--check')
const storing = process.argv.includes('--store')
const rawUrl = process.env.RAW_DATABASE_URL
if (storing && !rawUrl) throw new Error('--store needs RAW_DATABASE_URL')
const store = storing && rawUrl ? await groupCommitting(rawUrl) : null
const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 })
const answer = { id: '6745a1f0c2b4e5d6a7b8c9d0', status: 'queued' }
if (!check) {
  app.post('/v2/leads/retail', async (request, reply) => {
    await store?.([JSON.stringify(request.body)])
    return reply.status(202).send(answer)
  })
  app.post('/v2/leads/retail/batch', async (request, reply) => {
    const leads = (request.body as { leads: unknown[] }).leads
    await store?.(leads.map((lead) => JSON.stringify(lead)))
    return reply.status(202).send({ results: leads.map(() => answer) })
  })
} else {
  // The group and integration a real accept reads from the database, read once here.
  const t = await createTestApp()
  const created = await createAccount(t.db, { name: 'Bench', countryCode: 'BR' })
  if (!created.ok) throw new Error(created.message)
  const { account, group } = created.value
  const integration = { id: 'bench', accountId: account.id, groupId: group.id }
  await t.close()
  const context = (): CheckContext => ({
    integration,
    group,
    industry: 'retail',
    blocked: new Set(),
    at: Date.now(),
  })
  app.setValidatorCompiler(validatorCompiler)
  app.post('/v2/leads/retail', { schema: { body: LEAD_SCHEMAS.retail } }, async (request, reply) => {
    const checked = checkLead(request.body as LeadInput, context())
    if (!checked.ok) return reply.status(422).send(checked.refusal)
    await store?.([JSON.stringify(checked.lead.body)])
    return reply.status(202).send({ id: checked.lead.id, status: checked.lead.status })
  })
  const checkers = new Checkers()
  app.post('/v2/leads/retail/batch', async (request, reply) => {
    const checks = await checkers.check((request.body as { leads: unknown[] }).leads, context())
    const leads = checks.flatMap((c) => (c.ok ? [c.lead] : []))
    // The benchmarks send valid leads only: a refusal fails the whole body, and so the run.
    if (leads.length < checks.length) return reply.status(422).send({ refused: checks.length - leads.length })
    await store?.(leads.map((lead) => JSON.stringify(lead.body)))
    return reply.status(202).send({ results: leads.map((lead) => ({ id: lead.id, status: lead.status })) })
  })
}
await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
console.log(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }))
process.on('SIGTERM', () => app.close().then(() => process.exit(0)))

/** Resolves once `bodies` are committed, in one transaction with those of the requests that came meanwhile. */
async function groupCommitting(url: string): Promise<(bodies: string[]) => Promise<void>> {
  const table = await openRawTable(url)
  const waiting: { bodies: string[]; done: (error?: unknown) => void }[] = []
  let draining = false
  const drain = async () => {
    while (waiting.length > 0) {
      const group = waiting.splice(0, 64)
      const failure = await table.insert(group.flatMap((w) => w.bodies)).then(
        () => undefined,
        (error: unknown) => error ?? new Error('insert failed'),
      )
      for (const w of group) w.done(failure)
    }
    draining = false
  }
  return (bodies) =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ bodies, done: (error) => (error ? reject(error) : resolve()) })
      if (draining) return
      draining = true
      setImmediate(() => void drain())
    })
}
