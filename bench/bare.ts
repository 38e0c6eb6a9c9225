/**
 * The baseline server of the HTTP benchmarks: a bare Fastify route answering a constant JSON,
 * with no auth, validation or storage. Prints its port. Usage: node --import tsx bench/bare.ts
 */
import Fastify from 'fastify'

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 })
const answer = { id: '6745a1f0c2b4e5d6a7b8c9d0', status: 'queued' }
app.post('/v2/leads/retail', async (_request, reply) => reply.status(202).send(answer))
await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
console.log(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }))
process.on('SIGTERM', () => app.close().then(() => process.exit(0)))
