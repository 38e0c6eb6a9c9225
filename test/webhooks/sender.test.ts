import assert from 'node:assert/strict'
import type { LookupAddress } from 'node:dns'
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import {
  type AddressInfo,
  getDefaultAutoSelectFamily,
  isIP,
  type LookupFunction,
  setDefaultAutoSelectFamily,
} from 'node:net'
import { describe, type TestContext, test } from 'node:test'
import { setImmediate } from 'node:timers/promises'
import { checkCallbackUrl, WebhookSender } from '../../src/webhooks/sender.js'

/**
 * The webhook transport against real HTTP receivers on 127.0.0.1. With the SSRF guard on, a local
 * receiver is by definition out of reach, so guard-on tests prove refusals (and that the receiver
 * saw nothing); transport tests run with allowPrivate: true.
 */

const SETTING = /VENTAS_WEBHOOK_ALLOW_PRIVATE=true/

type Receiver = {
  url: string
  port: number
  requests: Array<{ headers: IncomingHttpHeaders; body: Buffer }>
  connections: number
}

/** A real receiver; `answer` replies (or not) once the request body has arrived. Closed when the test ends. */
async function startReceiver(
  t: TestContext,
  answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end('ok'),
): Promise<Receiver> {
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    receiver.requests.push({ headers: req.headers, body: Buffer.concat(chunks) })
    res.on('error', () => {}) // the sender hangs up after 4 KiB of a large body
    answer(req, res)
  })
  server.on('connection', () => {
    receiver.connections++
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const receiver: Receiver = { url: `http://127.0.0.1:${port}/hook`, port, requests: [], connections: 0 }
  t.after(async () => {
    server.closeAllConnections()
    server.close()
    await once(server, 'close')
  })
  return receiver
}

function startSender(t: TestContext, options: Partial<ConstructorParameters<typeof WebhookSender>[0]> = {}) {
  const sender = new WebhookSender({ allowPrivate: true, userAgent: 'Ventas-Webhooks/test', ...options })
  t.after(() => sender.close())
  return sender
}

/** A dns.lookup stand-in answering from a table; each call takes the next answer of its name's list. */
function fakeLookup(table: Record<string, string[][]>) {
  const calls: string[] = []
  const lookup: LookupFunction = (hostname, options, callback) => {
    calls.push(hostname)
    const answers = table[hostname]
    const answer = answers?.[Math.min(calls.filter((h) => h === hostname).length, answers.length) - 1]
    if (!answer) {
      const error = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
      return process.nextTick(callback, error, '')
    }
    const addresses: LookupAddress[] = answer.map((address) => ({ address, family: isIP(address) }))
    if (options.all) process.nextTick(callback, null, addresses)
    else process.nextTick(callback, null, addresses[0]?.address ?? '', addresses[0]?.family)
  }
  return { lookup, calls }
}

describe('checkCallbackUrl', () => {
  const { lookup } = fakeLookup({
    'loopback.example': [['127.0.0.1']],
    'mixed.example': [['8.8.8.8', '10.0.0.1']],
    'receiver.example': [['93.184.216.34']],
  })

  for (const url of [
    'http://127.0.0.1/',
    'http://[::1]/',
    'http://10.0.0.1/',
    'http://172.16.0.1/',
    'http://192.168.1.1/',
    'http://169.254.169.254/latest/meta-data',
    'http://[fd00::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://2130706433/',
    'http://localhost:1234/', // the real resolver
    'http://loopback.example/',
    'http://mixed.example/', // one bad address is enough
  ]) {
    test(`refuses ${url}, naming the setting that allows it`, async () => {
      const reason = await checkCallbackUrl(url, {
        allowPrivate: false,
        lookup: url.includes('localhost') ? undefined : lookup,
      })
      assert.match(reason ?? '', SETTING)
      assert.match(reason ?? '', /private, loopback, link-local or reserved/)
    })
  }

  test('names the forbidden address among those a host resolves to', async () => {
    const reason = await checkCallbackUrl('http://mixed.example/', { allowPrivate: false, lookup })
    assert.match(
      reason ?? '',
      /^callbackUrl host mixed\.example resolves to 8\.8\.8\.8, 10\.0\.0\.1; 10\.0\.0\.1 is/,
    )
  })

  test('refuses what is not an http(s) URL, or a name that does not resolve', async () => {
    assert.match((await checkCallbackUrl('ftp://x/', { allowPrivate: false, lookup })) ?? '', /http or https/)
    assert.match(
      (await checkCallbackUrl('not a url', { allowPrivate: false, lookup })) ?? '',
      /not a valid URL/,
    )
    assert.match(
      (await checkCallbackUrl('https://nowhere.example/', { allowPrivate: false, lookup })) ?? '',
      /callbackUrl host nowhere\.example does not resolve/,
    )
  })

  test('accepts public hosts and addresses, with their query string', async () => {
    assert.equal(
      await checkCallbackUrl('https://receiver.example/hook', { allowPrivate: false, lookup }),
      null,
    )
    assert.equal(
      await checkCallbackUrl('https://8.8.8.8/hook?token=x', { allowPrivate: false, lookup }),
      null,
    )
  })

  test('with allowPrivate, accepts private addresses but still only http(s)', async () => {
    assert.equal(await checkCallbackUrl('http://127.0.0.1:8080/', { allowPrivate: true }), null)
    assert.match((await checkCallbackUrl('ftp://x/', { allowPrivate: true })) ?? '', /http or https/)
  })
})

describe('WebhookSender with the SSRF guard on', () => {
  test('refuses a private address literal without making a request', async (t) => {
    const receiver = await startReceiver(t)
    const sender = startSender(t, { allowPrivate: false })
    const result = await sender.send(receiver.url, {}, '{}')
    assert.equal(result.statusCode, null)
    assert.match(result.error ?? '', SETTING)
    assert.equal(receiver.connections, 0)
  })

  test('refuses a name resolving to a private address, through the lookup undici hands to net', async (t) => {
    const receiver = await startReceiver(t)
    const { lookup, calls } = fakeLookup({ 'rebind.example': [['127.0.0.1']] })
    const sender = startSender(t, { allowPrivate: false, lookup })
    const result = await sender.send(`http://rebind.example:${receiver.port}/hook`, {}, '{}')
    assert.equal(result.statusCode, null)
    // Only our connect-time lookup can produce this message: undici passed it to net.connect.
    assert.match(
      result.error ?? '',
      /^callbackUrl host rebind\.example resolves to 127\.0\.0\.1;.*ALLOW_PRIVATE/,
    )
    assert.deepEqual(calls, ['rebind.example'])
    assert.equal(receiver.connections, 0)
  })

  test('refuses localhost through the real resolver', async (t) => {
    const receiver = await startReceiver(t)
    const sender = startSender(t, { allowPrivate: false })
    const result = await sender.send(`http://localhost:${receiver.port}/hook`, {}, '{}')
    assert.match(result.error ?? '', SETTING)
    assert.equal(receiver.connections, 0)
  })

  test('DNS rebinding: a name checked public at subscribe time and private at delivery is refused', async (t) => {
    const receiver = await startReceiver(t)
    const { lookup, calls } = fakeLookup({ 'rebind.example': [['93.184.216.34'], ['127.0.0.1']] })
    const url = `http://rebind.example:${receiver.port}/hook`
    assert.equal(await checkCallbackUrl(url, { allowPrivate: false, lookup }), null)
    const sender = startSender(t, { allowPrivate: false, lookup })
    const result = await sender.send(url, {}, '{}')
    assert.match(result.error ?? '', SETTING)
    // One resolution at delivery, both checked and connected to: no second lookup to rebind.
    assert.equal(calls.length, 2)
    assert.equal(receiver.connections, 0)
  })

  test('the check also holds without autoSelectFamily (lookup asked for one address)', async (t) => {
    const previous = getDefaultAutoSelectFamily()
    setDefaultAutoSelectFamily(false)
    t.after(() => setDefaultAutoSelectFamily(previous))
    const receiver = await startReceiver(t)
    const { lookup } = fakeLookup({ 'rebind.example': [['127.0.0.1']] })
    const sender = startSender(t, { allowPrivate: false, lookup })
    const result = await sender.send(`http://rebind.example:${receiver.port}/hook`, {}, '{}')
    assert.match(result.error ?? '', SETTING)
    assert.equal(receiver.connections, 0)
  })
})

describe('WebhookSender transport (allowPrivate)', () => {
  test('POSTs the exact bytes with its headers and captures the response', async (t) => {
    const receiver = await startReceiver(t, (_req, res) => res.writeHead(200).end('thanks ✓'))
    const sender = startSender(t)
    const body = JSON.stringify({ operationId: 'evt_1', nome: 'João' })
    const result = await sender.send(`${receiver.url}?token=s3cret`, { 'webhook-id': 'evt_1' }, body)
    assert.equal(result.statusCode, 200)
    assert.equal(result.body, 'thanks ✓')
    assert.equal(result.error, null)
    assert.equal(result.retryAfter, null)
    assert.ok(result.durationMs >= 0)
    const [received] = receiver.requests
    assert.ok(received)
    assert.deepEqual(received.body, Buffer.from(body))
    assert.equal(received.headers['content-type'], 'application/json')
    assert.equal(received.headers['user-agent'], 'Ventas-Webhooks/test')
    assert.equal(received.headers['webhook-id'], 'evt_1')
  })

  test('connects to the address the injected lookup returned, in both lookup modes', async (t) => {
    const receiver = await startReceiver(t)
    const { lookup, calls } = fakeLookup({ 'receiver.example': [['127.0.0.1']] })
    const sender = startSender(t, { lookup })
    const url = `http://receiver.example:${receiver.port}/hook`
    assert.equal((await sender.send(url, {}, '{}')).statusCode, 200)
    const previous = getDefaultAutoSelectFamily()
    setDefaultAutoSelectFamily(false)
    t.after(() => setDefaultAutoSelectFamily(previous))
    const other = startSender(t, { lookup })
    assert.equal((await other.send(url, {}, '{}')).statusCode, 200)
    assert.equal(calls.length, 2)
    assert.equal(receiver.requests.length, 2)
  })

  test('keeps at most 4 KiB of a 1 MB response body', async (t) => {
    const receiver = await startReceiver(t, (_req, res) => res.end(Buffer.alloc(1024 * 1024, 'a')))
    const sender = startSender(t)
    const result = await sender.send(receiver.url, {}, '{}')
    assert.equal(result.statusCode, 200)
    assert.equal(result.body, 'a'.repeat(4096))
    assert.equal((await sender.send(receiver.url, {}, '{}')).statusCode, 200, 'the sender carries on')
  })

  test('keeps the connection of an answer longer than 4 KiB that came whole', async (t) => {
    const page = Buffer.alloc(5 * 1024, 'c')
    const receiver = await startReceiver(t, (_req, res) => res.end(page))
    const sender = startSender(t)
    for (let i = 0; i < 3; i++) {
      const result = await sender.send(receiver.url, {}, '{}')
      assert.deepEqual([result.statusCode, result.body.length], [200, 4096])
      await setImmediate()
    }
    assert.equal(
      receiver.connections,
      1,
      'the answers read to their end in one parse leave the socket reusable',
    )
  })

  test('stops reading a body that never ends at 4 KiB', async (t) => {
    const receiver = await startReceiver(t, (_req, res) => {
      res.writeHead(200)
      const flood = setInterval(() => res.write(Buffer.alloc(16 * 1024, 'b')), 5)
      res.on('close', () => clearInterval(flood))
    })
    const sender = startSender(t, { timeoutMs: 2000 })
    const result = await sender.send(receiver.url, {}, '{}')
    assert.deepEqual([result.statusCode, result.error, result.body.length], [200, null, 4096])
  })

  test('reports error statuses and Retry-After as they came', async (t) => {
    const receiver = await startReceiver(t, (req, res) => {
      const status = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('status'))
      if (status === 429) res.setHeader('retry-after', '120')
      res.writeHead(status).end(`status ${status}`)
    })
    const sender = startSender(t)
    const server = await sender.send(`${receiver.url}?status=500`, {}, '{}')
    assert.deepEqual([server.statusCode, server.body, server.error], [500, 'status 500', null])
    assert.equal((await sender.send(`${receiver.url}?status=410`, {}, '{}')).statusCode, 410)
    const limited = await sender.send(`${receiver.url}?status=429`, {}, '{}')
    assert.deepEqual([limited.statusCode, limited.retryAfter], [429, '120'])
  })

  test('does not follow a redirect', async (t) => {
    const target = await startReceiver(t)
    const receiver = await startReceiver(t, (_req, res) => res.writeHead(302, { location: target.url }).end())
    const sender = startSender(t)
    const result = await sender.send(receiver.url, {}, '{}')
    assert.equal(result.statusCode, 302)
    assert.equal(target.connections, 0)
  })

  test('bounds an attempt to a receiver that never answers by timeoutMs', { timeout: 5000 }, async (t) => {
    const receiver = await startReceiver(t, () => {})
    const sender = startSender(t, { timeoutMs: 300 })
    const result = await sender.send(receiver.url, {}, '{}')
    assert.equal(result.statusCode, null)
    assert.equal(result.error, 'timed out after 300 ms')
    assert.ok(result.durationMs >= 250 && result.durationMs < 2000, `took ${result.durationMs} ms`)
  })

  test('bounds a response body that never ends by timeoutMs too', { timeout: 5000 }, async (t) => {
    const receiver = await startReceiver(t, (_req, res) => res.writeHead(200).write('partial'))
    const sender = startSender(t, { timeoutMs: 300 })
    const result = await sender.send(receiver.url, {}, '{}')
    assert.equal(result.error, 'timed out after 300 ms')
    assert.ok(result.durationMs < 2000, `took ${result.durationMs} ms`)
  })

  test('reports a refused connection', async (t) => {
    const closed = createServer().listen(0, '127.0.0.1')
    await once(closed, 'listening')
    const { port } = closed.address() as AddressInfo
    closed.close()
    await once(closed, 'close')
    const sender = startSender(t)
    const result = await sender.send(`http://127.0.0.1:${port}/hook`, {}, '{}')
    assert.equal(result.statusCode, null)
    assert.match(result.error ?? '', /refused/)
  })

  test('reuses keep-alive connections across deliveries', async (t) => {
    const receiver = await startReceiver(t)
    const sender = startSender(t)
    for (let i = 0; i < 3; i++) {
      assert.equal((await sender.send(receiver.url, {}, `{"n":${i}}`)).statusCode, 200)
      await setImmediate() // as between a worker's deliveries: see the next test
    }
    assert.equal(receiver.requests.length, 3)
    assert.equal(receiver.connections, 1)
  })

  test('back-to-back deliveries share two connections', async (t) => {
    // undici waits one event-loop turn before reusing a socket (onMessageComplete in
    // client-h1.js), so a send issued in the same turn opens a second connection, and no more.
    const receiver = await startReceiver(t)
    const sender = startSender(t)
    for (let i = 0; i < 10; i++) assert.equal((await sender.send(receiver.url, {}, '{}')).statusCode, 200)
    assert.equal(receiver.requests.length, 10)
    assert.ok(receiver.connections <= 2, `${receiver.connections} connections`)
  })
})
