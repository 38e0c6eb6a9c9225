/**
 * A webhook receiver that clocks arrivals, for bench/latency.ts, in its own process so it never
 * shares the event loop with what is measured. Answers 204 at once; for each `leads` webhook,
 * prints one JSON line `{lead, type, at}` (`at`: epoch ms when its body had arrived, the clock of
 * bench/paced.ts). Prints its port first. Usage: node --import tsx bench/lead-receiver.ts
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { epochNow } from './paced.js'

const server = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => {
    const at = epochNow()
    res.writeHead(204).end()
    const body = JSON.parse(Buffer.concat(chunks).toString()) as {
      topic?: string
      type?: string
      lead?: { id?: string }
    }
    if (body.topic === 'leads')
      process.stdout.write(`${JSON.stringify({ lead: body.lead?.id, type: body.type, at })}\n`)
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }))
})
process.on('SIGTERM', () => process.exit(0))
