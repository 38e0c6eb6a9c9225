import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'

/**
 * The one configuration object (operations.md §5), read from the environment once at start.
 * Every variable is parsed by its entry in PARSERS; a bad value stops the start with a
 * ConfigError that names the variable and says what was expected.
 */
export type Storage = { engine: 'sqlite'; path: string } | { engine: 'postgres'; url: string }

export type Config = {
  port: number
  host: string
  storage: Storage
  /** 32 bytes; null until resolved by loadSecretKey (SQLite generates one on first start). */
  secretKey: Buffer | null
  bootstrap: boolean
  defaultCountry: string
  webhookAllowPrivate: boolean
  rateLimit: { perSecond: number; burst: number }
  redisUrl: string | null
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  sqliteSynchronous: 'FULL' | 'NORMAL'
  /** How long a worker's claim on a job lasts; a dead worker's jobs return after it. */
  workerLeaseMs: number
  /** How long one webhook attempt may take, connect to last byte (webhooks.md §4: 15 s). */
  webhookTimeoutMs: number
  /** Requests one process keeps open to one subscription at most (webhooks.md §4: bounded per subscription). */
  webhookConcurrency: number
  /** How long the delivery log keeps deliveries: delivered ones, then failed ones (webhooks.md §5). */
  webhookRetention: { deliveredDays: number; failedDays: number }
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`)
  }
}

type Env = Record<string, string | undefined>
type Parser<T> = { variable: string; fallback: string | undefined; parse: (raw: string) => T }

function parseBoolean(raw: string): boolean {
  if (/^(true|1|yes)$/i.test(raw)) return true
  if (/^(false|0|no)$/i.test(raw)) return false
  throw new Error('expected true or false')
}

export function parseSecretKey(raw: string): Buffer {
  const trimmed = raw.trim()
  const bytes = /^[0-9a-fA-F]{64}$/.test(trimmed)
    ? Buffer.from(trimmed, 'hex')
    : Buffer.from(trimmed, 'base64')
  if (bytes.length !== 32) throw new Error('expected 32 bytes as 64 hexadecimal characters or base64')
  return bytes
}

function parseStorage(raw: string): Storage {
  if (/^postgres(ql)?:\/\//.test(raw)) return { engine: 'postgres', url: raw }
  if (raw.startsWith('sqlite:')) {
    const path = raw.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '')
    if (!path) throw new Error('sqlite: needs a file path, e.g. sqlite:./data/ventas.db')
    return { engine: 'sqlite', path: resolve(path) }
  }
  throw new Error('expected sqlite:<path> or postgres://…')
}

function parseRateLimit(raw: string): Config['rateLimit'] {
  const match = /^(\d+)(?::(\d+))?$/.exec(raw.trim())
  if (!match) throw new Error('expected <requests per second> or <requests per second>:<burst>, e.g. 100:200')
  const perSecond = Number(match[1])
  const burst = match[2] ? Number(match[2]) : perSecond * 2
  if (perSecond < 1 || burst < perSecond) throw new Error('the rate must be ≥ 1 and the burst ≥ the rate')
  return { perSecond, burst }
}

/** A whole number from `min` to `max`, or `expected` as the error. */
function wholeNumber(min: number, max: number, expected: string) {
  return (raw: string): number => {
    const n = Number(raw)
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(expected)
    return n
  }
}

function milliseconds(min: number, max: number) {
  return wholeNumber(
    min,
    max,
    max === Number.MAX_SAFE_INTEGER
      ? `expected a whole number of milliseconds ≥ ${min}`
      : `expected a whole number of milliseconds from ${min} to ${max}`,
  )
}

function parseRetention(raw: string): Config['webhookRetention'] {
  const match = /^(\d+):(\d+)$/.exec(raw.trim())
  if (!match) throw new Error('expected <days to keep delivered>:<days to keep failed>, e.g. 30:90')
  const [deliveredDays, failedDays] = [Number(match[1]), Number(match[2])]
  if (deliveredDays < 1 || failedDays < 1) throw new Error('both must be at least 1 day')
  return { deliveredDays, failedDays }
}

function oneOf<T extends string>(values: readonly T[], transform = (s: string) => s) {
  return (raw: string): T => {
    const value = transform(raw) as T
    if (!values.includes(value)) throw new Error(`expected one of ${values.join(', ')}`)
    return value
  }
}

const PARSERS = {
  port: {
    variable: 'PORT',
    fallback: '8080',
    parse: wholeNumber(0, 65535, 'expected a port number 0–65535'),
  },
  host: { variable: 'HOST', fallback: '127.0.0.1', parse: (raw: string) => raw },
  storage: { variable: 'DATABASE_URL', fallback: 'sqlite:./data/ventas.db', parse: parseStorage },
  secretKey: { variable: 'VENTAS_SECRET_KEY', fallback: undefined, parse: parseSecretKey },
  bootstrap: { variable: 'VENTAS_BOOTSTRAP', fallback: 'true', parse: parseBoolean },
  defaultCountry: {
    variable: 'VENTAS_DEFAULT_COUNTRY',
    fallback: 'BR',
    parse: (raw: string) => {
      if (!/^[A-Za-z]{2}$/.test(raw))
        throw new Error('expected an ISO 3166-1 alpha-2 country code such as BR')
      return raw.toUpperCase()
    },
  },
  webhookAllowPrivate: { variable: 'VENTAS_WEBHOOK_ALLOW_PRIVATE', fallback: 'false', parse: parseBoolean },
  rateLimit: { variable: 'VENTAS_RATE_LIMIT', fallback: '100:200', parse: parseRateLimit },
  redisUrl: {
    variable: 'REDIS_URL',
    fallback: undefined,
    parse: (raw: string) => {
      if (!/^rediss?:\/\//.test(raw)) throw new Error('expected redis://host:port')
      return raw
    },
  },
  logLevel: {
    variable: 'LOG_LEVEL',
    fallback: 'info',
    parse: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, (s) =>
      s.toLowerCase(),
    ),
  },
  sqliteSynchronous: {
    variable: 'VENTAS_SQLITE_SYNCHRONOUS',
    fallback: 'FULL',
    parse: oneOf(['FULL', 'NORMAL'] as const, (s) => s.toUpperCase()),
  },
  workerLeaseMs: {
    variable: 'VENTAS_WORKER_LEASE_MS',
    fallback: '30000',
    parse: milliseconds(100, Number.MAX_SAFE_INTEGER),
  },
  webhookTimeoutMs: {
    variable: 'VENTAS_WEBHOOK_TIMEOUT_MS',
    fallback: '15000',
    parse: milliseconds(100, 60_000),
  },
  webhookConcurrency: {
    variable: 'VENTAS_WEBHOOK_CONCURRENCY',
    fallback: '64',
    parse: wholeNumber(1, 256, 'expected a whole number of requests from 1 to 256'),
  },
  webhookRetention: { variable: 'VENTAS_WEBHOOK_RETENTION_DAYS', fallback: '30:90', parse: parseRetention },
} satisfies { [K in keyof Config]: Parser<NonNullable<Config[K]>> }

/** Reads and validates the environment. Throws ConfigError on the first bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const config: Record<string, unknown> = {}
  for (const [field, parser] of Object.entries(PARSERS) as [string, Parser<unknown>][]) {
    const raw = env[parser.variable]?.trim() || parser.fallback
    if (raw === undefined) {
      config[field] = null
      continue
    }
    try {
      config[field] = parser.parse(raw)
    } catch (error) {
      throw new ConfigError(
        parser.variable,
        `${(error as Error).message} (got ${JSON.stringify(mask(field, raw))})`,
      )
    }
  }
  return config as Config
}

function mask(field: string, raw: string): string {
  return field === 'secretKey' ? '<hidden>' : raw
}

/** The file that holds the generated secret key: `secret.key` beside the SQLite database. */
export function secretKeyPath(storage: Storage & { engine: 'sqlite' }): string {
  return join(dirname(storage.path), 'secret.key')
}

/**
 * Resolves the secret key: the environment's, else (SQLite only) the one in `secret.key`, made
 * with mode 0600 on first start. PostgreSQL deployments run several processes that must share
 * the key, so there it is required.
 */
export function loadSecretKey(config: Config): Buffer {
  if (config.secretKey) return config.secretKey
  if (config.storage.engine === 'postgres') {
    throw new ConfigError(
      'VENTAS_SECRET_KEY',
      'required with PostgreSQL (32 random bytes as 64 hex characters)',
    )
  }
  const path = secretKeyPath(config.storage)
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' })
  }
  try {
    return parseSecretKey(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new ConfigError('VENTAS_SECRET_KEY', `${path} is not a valid key: ${(error as Error).message}`)
  }
}
