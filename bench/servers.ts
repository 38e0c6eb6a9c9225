/**
 * The processes the HTTP benchmarks measure, each in its own process so none shares an event
 * loop with the load generator: Ventas on a fresh database (SQLite unless DATABASE_URL names
 * PostgreSQL), the bare Fastify route of bench/bare.ts, and webhook receivers.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { loadConfig } from '../src/config.js'
import { connect } from '../src/store/connect.js'
import type { Db, LeadsTable } from '../src/store/database.js'
import { createTestDatabase, type TestDatabase } from '../test/helper.js'

/** Children still running; killed if this process exits first (a failed start, an exception). */
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/** Starts `node <args>` and resolves with its output once `ready` matches it (stdout is read to the end). */
export function start(nodeArgs: string[], env: Record<string, string>, ready: RegExp) {
  const child = spawn(process.execPath, nodeArgs, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  running.add(child)
  child.once('exit', () => running.delete(child))
  return new Promise<{ child: ChildProcess; output: string }>((resolve, reject) => {
    let output = ''
    child.once('exit', (code) => reject(new Error(`${nodeArgs.join(' ')} exited ${code}: ${output}`)))
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (ready.test(output)) resolve({ child, output })
    })
  })
}

/** SIGTERM, then waits for the exit (a CPU profile is written on it); SIGKILL after `graceMs`. */
export async function stop(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

/**
 * bench/bare.ts: `POST /v2/leads/retail` parses the JSON body (1 MiB limit) and answers a constant
 * 202; with `flags` it also checks (`--check`) or stores (`--store`, in `env.RAW_DATABASE_URL`).
 * `${url}/batch` does the same for each lead of a `{"leads": [...]}` body.
 */
export async function startBare(
  flags: string[] = [],
  env: Record<string, string> = {},
): Promise<{ url: string; child: ChildProcess }> {
  const bare = await start(['--import', 'tsx', 'bench/bare.ts', ...flags], env, /"port":\d+/)
  return { url: `http://127.0.0.1:${JSON.parse(bare.output).port}/v2/leads/retail`, child: bare.child }
}

/**
 * A lead's stored times (epoch ms, whole, each process's `Date.now()`): received, its batch's time
 * (`processed_at`, taken after the batch's reads), the start of the dispatch that took its `leads`
 * event, and its webhook's first attempt.
 */
export type Timeline = { receivedAt: number; processedAt: number; dispatchedAt: number; sentAt: number }

export type Ventas = {
  url: string
  key: string
  engine: 'sqlite' | 'postgres'
  /** Counts what the run stored; call after stop(), so a SQLite file is no longer written. */
  count: (status?: LeadsTable['status']) => Promise<number>
  /** Each lead's way to its first `leads` webhook attempt, by lead id, from the stored times; after stop(). */
  timelines: () => Promise<Map<string, Timeline>>
  stop: () => Promise<void>
  /** Deletes the database (the SQLite folder, or the PostgreSQL schema). */
  drop: () => Promise<void>
}

/**
 * `ventas serve`, `ventas api`, or `ventas api` beside one `ventas worker` (`api+worker`), on a
 * fresh database with the first run's demo account and key. Runs the TypeScript sources through
 * tsx, or with `profileDir` the build in dist/ (`npm run build` first) under `node --cpu-prof`,
 * one .cpuprofile per process written there when it stops.
 */
export async function startVentas(
  command: 'serve' | 'api' | 'api+worker',
  options: { env?: Record<string, string>; profileDir?: string } = {},
): Promise<Ventas> {
  const database: TestDatabase = await createTestDatabase()
  const env = { ...database.env, PORT: '0', LOG_LEVEL: 'warn', VENTAS_RATE_LIMIT: '1000000', ...options.env }
  const profileDir = options.profileDir ? resolve(options.profileDir) : undefined
  if (profileDir) mkdirSync(profileDir, { recursive: true })
  const node = (ventasCommand: string) =>
    profileDir
      ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, 'dist/main.js', ventasCommand]
      : ['--import', 'tsx', 'src/cli/main.ts', ventasCommand]
  const children: ChildProcess[] = []
  const read = async <T>(query: (db: Db) => Promise<T>): Promise<T> => {
    const db = connect(loadConfig(database.env).storage, { poolSize: 1 })
    try {
      return await query(db)
    } finally {
      await db.destroy()
    }
  }
  try {
    const api = await start(node(command === 'serve' ? 'serve' : 'api'), env, /API key: +vk_\S+/)
    children.push(api.child)
    if (command === 'api+worker')
      children.push((await start(node('worker'), { ...env, LOG_LEVEL: 'info' }, /worker started/)).child)
    const stopAll = async () => {
      for (const child of children) await stop(child)
    }
    return {
      url: /running at (http:\/\/\S+)/.exec(api.output)?.[1] as string,
      key: /API key: +(vk_\S+)/.exec(api.output)?.[1] as string,
      engine: database.url.startsWith('postgres') ? 'postgres' : 'sqlite',
      stop: stopAll,
      drop: () => database.drop(),
      count: (status?: LeadsTable['status']) =>
        read(async (db) => {
          let query = db.selectFrom('leads').select((eb) => eb.fn.countAll<number>().as('n'))
          if (status) query = query.where('status', '=', status)
          return Number((await query.executeTakeFirstOrThrow()).n)
        }),
      timelines: () =>
        read(async (db) => {
          const rows = await db
            .selectFrom('leads')
            .innerJoin('events', (join) =>
              join.onRef('events.subjectId', '=', 'leads.id').on('events.topic', '=', 'leads'),
            )
            .innerJoin('deliveries', 'deliveries.eventId', 'events.id')
            .innerJoin('deliveryAttempts', (join) =>
              join
                .onRef('deliveryAttempts.deliveryId', '=', 'deliveries.id')
                .on('deliveryAttempts.number', '=', 1),
            )
            // A lease that ran out can log a first attempt twice; the earliest counts.
            .select((eb) => [
              'leads.id',
              'leads.receivedAt',
              'leads.processedAt',
              eb.fn.min('events.dispatchedAt').as('dispatchedAt'),
              eb.fn.min('deliveryAttempts.sentAt').as('sentAt'),
            ])
            .groupBy(['leads.id', 'leads.receivedAt', 'leads.processedAt'])
            .execute()
          return new Map(
            rows.map((r) => [
              r.id,
              {
                receivedAt: Number(r.receivedAt),
                processedAt: Number(r.processedAt),
                dispatchedAt: Number(r.dispatchedAt),
                sentAt: Number(r.sentAt),
              },
            ]),
          )
        }),
    }
  } catch (error) {
    for (const child of children) await stop(child)
    await database.drop()
    throw error
  }
}
