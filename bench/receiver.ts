/**
 * A webhook receiver for benchmarks, in its own process so it never shares the event loop with
 * what is measured. `answer` (default) replies 204 at once; `hang` never replies. Prints its port.
 * Usage: node --import tsx bench/receiver.ts [answer|hang]
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

const hang = process.argv[2] === 'hang'
let received = 0
const server = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    received += 1
    if (!hang) res.writeHead(204).end()
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }))
})
process.on('SIGTERM', () => {
  console.error(JSON.stringify({ received }))
  process.exit(0)
})
