import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type Received = { headers: IncomingHttpHeaders; body: string; json: Record<string, unknown> }

/** What the receiver does with a request: answer it, or hold it open until the receiver closes. */
export type Answer = { status: number; headers?: Record<string, string>; body?: string } | 'hang'

/**
 * A real HTTP receiver on 127.0.0.1 that records every webhook it is sent and answers as the test
 * says (200 by default). `waitFor` resolves once it holds `n` requests.
 */
export async function startReceiver(
  answer: (received: Received, index: number) => Answer = () => ({ status: 200 }),
) {
  const received: Received[] = []
  const hanging = new Set<ServerResponse>()
  const waiters: { n: number; resolve: () => void }[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const entry = { headers: req.headers, body, json: body ? JSON.parse(body) : {} }
      received.push(entry)
      for (const waiter of waiters.filter((w) => received.length >= w.n)) waiter.resolve()
      const reply = answer(entry, received.length - 1)
      if (reply === 'hang') {
        hanging.add(res)
        return
      }
      res.writeHead(reply.status, reply.headers).end(reply.body ?? '')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/hooks?token=abc`,
    port,
    received,
    /** Requests held open right now. */
    hanging: () => hanging.size,
    waitFor: (n: number) =>
      received.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve })),
    close: async () => {
      for (const res of hanging) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

export type Receiver = Awaited<ReturnType<typeof startReceiver>>
