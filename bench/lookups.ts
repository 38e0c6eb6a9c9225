/**
 * Lookups at scale (issue 6, target 8: median under 10 ms at 1,000,000 prospects):
 * `GET /v1/prospect-by?phoneNumber=` with an existing prospect's phone typed in another format,
 * and `GET /v1/prospects?search=` with an existing prospect's email typed in another form, against
 * the bare Fastify route of bench/bare.ts (a constant JSON, asked with an empty POST), same run.
 * Usage: npm run bench -- lookups [--prospects 1000000] [--requests 2000] [--seconds 10] [--connections 16]
 * The database (SQLite unless DATABASE_URL names PostgreSQL) is filled by bench/population.ts, then
 * `ventas api` (through tsx, as bench/accept.ts runs it) serves it from its own process. Each
 * route is timed one request at a time (--requests, the latency a caller sees) and under
 * autocannon (--connections for --seconds). Every answer is checked: it must hold the prospect
 * the index says owns that phone or email, so a fast empty answer counts as wrong, not as fast.
 */
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { Client } from 'undici'
import { parseEmail } from '../src/domain/email.js'
import type { KeyType } from '../src/domain/merge.js'
import { parsePhone } from '../src/domain/phone.js'
import { ALL_SCOPES } from '../src/domain/scopes.js'
import { createIntegration } from '../src/services/access.js'
import { findKeyHolders } from '../src/store/prospects.js'
import { createTestApp, ENGINE } from '../test/helper.js'
import { createdAtOf, populateProspects, populationPerson } from './population.js'
import { start, startBare } from './servers.js'
import { benchAccount } from './setup.js'

const { values } = parseArgs({
  options: {
    prospects: { type: 'string', default: '1000000' },
    requests: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
  },
  allowPositionals: true,
})
const count = Number(values.prospects)
const sequential = Number(values.requests)
const duration = Number(values.seconds)
const connections = Number(values.connections)
const TARGETS = 1000

type Target = { path: string; expect: string }

const now = Date.now()
const t = await createTestApp({ now })

/** Fills the database and picks the people to look up, with the prospect each must find. */
async function prepare() {
  const bench = await benchAccount(t)
  const filled = await populateProspects(t.db, bench, count, { now })
  const access = await createIntegration(
    t.db,
    t.secretKey,
    { accountId: bench.account.id, groupId: bench.group.id, name: 'lookups', scopes: ALL_SCOPES },
    'bench',
  )
  if (!access.ok) throw new Error(access.message)

  /** Who holds each key, as the worker finds it: what the API must answer. */
  async function holders(type: KeyType, keys: string[]): Promise<Map<string, string>> {
    const found = await findKeyHolders(
      t.db,
      bench.account.id,
      keys.map((value) => ({ type, value })),
    )
    return new Map(found.map((h) => [h.value, h.prospectId]))
  }

  // Phones: people spread over the whole table, each asked in a format other than the one stored
  // (E.164) and the one the lead sent, the old eight-digit mobile among them.
  const phonePeople = Array.from({ length: Math.min(TARGETS, count) }, (_, k) =>
    populationPerson(Math.floor((k * count) / Math.min(TARGETS, count))),
  )
  const phoneKeys = phonePeople.map((p) => parsePhone(`+55${p.ddd}${p.mobile}`, 'BR').key as string)
  const phoneHolders = await holders('phone', phoneKeys)
  const phoneTargets: Target[] = phonePeople.map((p, k) => {
    const typed = [
      `(${p.ddd}) ${p.mobile.slice(1, 5)}-${p.mobile.slice(5)}`,
      `+55 (${p.ddd}) ${p.mobile.slice(0, 5)}-${p.mobile.slice(5)}`,
      `${p.ddd}${p.mobile}`,
    ][k % 3] as string
    return {
      path: `/v1/prospect-by?phoneNumber=${encodeURIComponent(typed)}`,
      expect: phoneHolders.get(phoneKeys[k] as string) as string,
    }
  })

  // Emails: `search` without a limit lists the last 31 days (api.md §3.2), so the people asked for
  // are the most recent 20 days' ones (createdAtOf), each typed in upper case or, at Gmail, with a tag.
  const recent = Math.floor(count * (20 / 400))
  const emailPeople = Array.from({ length: recent }, (_, k) => populationPerson(count - 1 - k))
    .filter((p) => p.email !== null && createdAtOf(p.index, count, now) > now - 20 * 86_400_000)
    .slice(0, TARGETS)
  const emailKeys = emailPeople.map((p) => parseEmail(p.email as string).key as string)
  const emailHolders = await holders('email', emailKeys)
  const emailTargets: Target[] = emailPeople.map((p, k) => {
    const email = p.email as string
    const typed = email.endsWith('@gmail.com') ? email.replace('@', '+loja@') : email.toUpperCase()
    return {
      path: `/v1/prospects?search=${encodeURIComponent(typed)}`,
      expect: emailHolders.get(emailKeys[k] as string) as string,
    }
  })
  if (phoneTargets.some((p) => !p.expect) || emailTargets.some((p) => !p.expect) || emailTargets.length === 0)
    throw new Error('a looked-up phone or email has no prospect in the index')
  await t.app.close()
  await t.db.destroy()
  return { phoneTargets, emailTargets, key: access.value.key, prospects: filled.prospects }
}

let bare: Awaited<ReturnType<typeof startBare>> | undefined
let ventas: Awaited<ReturnType<typeof start>> | undefined
try {
  const { phoneTargets, emailTargets, key, prospects } = await prepare()
  bare = await startBare()
  const bareUrl = new URL(bare.url).origin
  ventas = await start(
    ['--import', 'tsx', 'src/cli/main.ts', 'api'],
    { ...t.database.env, PORT: '0', LOG_LEVEL: 'warn', VENTAS_RATE_LIMIT: '1000000' },
    /running at (http:\/\/\S+)/,
  )
  const ventasUrl = /running at (http:\/\/\S+)/.exec(ventas.output)?.[1] as string
  const headers = { 'x-api-key': key }

  /** One request at a time on one connection: the latency a single caller sees. */
  async function oneAtATime(url: string, targets: Target[] | null, total: number) {
    const client = new Client(url)
    const times: number[] = []
    let wrong = 0
    for (let i = 0; i < total; i++) {
      const target = targets?.[i % targets.length]
      const started = performance.now()
      const response = target
        ? await client.request({ method: 'GET', path: target.path, headers })
        : await client.request({ method: 'POST', path: '/v2/leads/retail' })
      const body = await response.body.text()
      times.push(performance.now() - started)
      if (target && (response.statusCode !== 200 || !isAnswer(body, target.expect))) wrong++
      if (!target && response.statusCode !== 202) wrong++
    }
    await client.close()
    times.sort((a, b) => a - b)
    const at = (q: number) =>
      Number((times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0).toFixed(2))
    return { p50ms: at(0.5), p99ms: at(0.99), wrong }
  }

  /** The answer is a list holding exactly the prospect the index names. */
  function isAnswer(body: string, expect: string): boolean {
    const list = JSON.parse(body) as { id: string }[]
    return list.length === 1 && list[0]?.id === expect
  }

  async function load(url: string, targets: Target[] | null) {
    let next = 0
    let wrong = 0
    const result = await autocannon({
      url,
      method: targets ? 'GET' : 'POST',
      connections,
      duration,
      headers: targets ? headers : {},
      requests: [
        {
          setupRequest: (request, context) => {
            const target = targets?.[next++ % targets.length]
            Object.assign(context, { expect: target?.expect })
            return target ? { ...request, path: target.path } : { ...request, path: '/v2/leads/retail' }
          },
          // A cheap check under load (the id in the body); the one-at-a-time pass parses every answer.
          onResponse: (status, body, context) => {
            const expect = (context as { expect?: string }).expect
            if (expect && (status !== 200 || !body.includes(expect))) wrong++
          },
        },
      ],
    })
    wrong += result.errors + result.timeouts + result.non2xx
    return {
      rps: Math.round(result.requests.average),
      p50ms: result.latency.p50,
      p99ms: result.latency.p99,
      wrong,
    }
  }

  const report = (figure: string, r: object) =>
    console.log(JSON.stringify({ engine: ENGINE, figure, prospects, ...r }))
  // Each pass once untimed first: every answer checked, caches as warm as the baseline's.
  for (const targets of [phoneTargets, emailTargets]) {
    const checked = await oneAtATime(ventasUrl, targets, targets.length)
    if (checked.wrong > 0)
      throw new Error(`${checked.wrong} of ${targets.length} lookups did not find their prospect`)
  }
  await oneAtATime(bareUrl, null, sequential)
  const base = await oneAtATime(bareUrl, null, sequential)
  const phone = await oneAtATime(ventasUrl, phoneTargets, sequential)
  const email = await oneAtATime(ventasUrl, emailTargets, sequential)
  report('GET /v1/prospect-by?phoneNumber= (one at a time)', { ...phone, requests: sequential })
  report('GET /v1/prospects?search=<email> (one at a time)', { ...email, requests: sequential })
  report('baseline: bare Fastify route (one at a time)', { ...base, requests: sequential })
  const baseLoad = await load(bareUrl, null)
  const phoneLoad = await load(ventasUrl, phoneTargets)
  const emailLoad = await load(ventasUrl, emailTargets)
  report('GET /v1/prospect-by?phoneNumber= (autocannon)', { ...phoneLoad, connections, duration })
  report('GET /v1/prospects?search=<email> (autocannon)', { ...emailLoad, connections, duration })
  report('baseline: bare Fastify route (autocannon)', { ...baseLoad, connections, duration })
  for (const [figure, r] of [
    ['prospect-by', phoneLoad],
    ['search by email', emailLoad],
  ] as const)
    console.log(
      JSON.stringify({
        engine: ENGINE,
        figure: `${figure} / baseline`,
        value: Number((r.rps / baseLoad.rps).toPrecision(2)),
      }),
    )
} finally {
  bare?.child.kill('SIGTERM')
  ventas?.child.kill('SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 500))
  await t.database.drop()
}
