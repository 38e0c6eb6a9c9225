import { once } from 'node:events'
import { createReadStream, createWriteStream, type ReadStream, type WriteStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { extname } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { ALL_INDUSTRIES, isIndustry } from '../../domain/industries.js'
import { CliError } from '../context.js'
import { leadOfRow, POISON, readCsvRecords } from '../csv.js'
import type { Command } from '../main.js'

const CHUNK = 1000 // the batch route's maxItems (api.md §2.1)
const TRIES = 5
const MAX_BODY = 10 * 1024 * 1024 // the batch route's body limit (api.md §1.3)

type ItemError = { code: string; message: string; details: unknown[] }
/** One row of the file, by the line it starts on: a lead to send, or why it could not be read. */
type Row = { line: number; lead: unknown; error?: ItemError }
type Tally = { total: number; accepted: number; duplicates: number; rejected: number; batches: number }

const parseError = (message: string): ItemError => ({ code: 'PARSE_ERROR', message, details: [] })

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text, (key, value) => (POISON.has(key) ? undefined : value))
  } catch (error) {
    return error as Error
  }
}

async function* readRows(format: 'csv' | 'ndjson', lines: AsyncIterable<string>): AsyncGenerator<Row> {
  if (format === 'ndjson') {
    let line = 0
    for await (const text of lines) {
      line++
      if (!text.trim()) continue
      const lead = parseJson(text)
      if (lead instanceof Error) yield { line, lead: text, error: parseError(`not JSON: ${lead.message}`) }
      else if (lead && typeof lead === 'object' && !Array.isArray(lead)) yield { line, lead }
      else yield { line, lead: text, error: parseError('the line is not a JSON object') }
    }
    return
  }
  let header: string[] | undefined
  for await (const record of readCsvRecords(lines)) {
    if (!header && 'error' in record)
      throw new CliError('INVALID', `the header row is not CSV: ${record.error}`)
    if (!header) header = (record as { cells: string[] }).cells.map((name) => name.trim())
    else if ('error' in record) yield { line: record.line, lead: record.raw, error: parseError(record.error) }
    else if (record.cells.length !== header.length) {
      const message = `${record.cells.length} cells where the header has ${header.length}`
      yield { line: record.line, lead: record.raw, error: parseError(message) }
    } else yield { line: record.line, lead: leadOfRow(header, record.cells) }
  }
}

async function* linesOf(stream: ReadStream): AsyncGenerator<string> {
  let first = true
  for await (const line of createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })) {
    yield first ? line.replace(/^\uFEFF/, '') : line // a byte-order mark, as spreadsheet exports write
    first = false
  }
}

/** By extension; otherwise an NDJSON file starts with `{` and anything else is taken as CSV. */
async function formatOf(path: string): Promise<'csv' | 'ndjson'> {
  const extension = extname(path).toLowerCase()
  if (extension === '.csv') return 'csv'
  if (extension === '.ndjson' || extension === '.jsonl') return 'ndjson'
  for await (const head of createReadStream(path, { end: 4095, encoding: 'utf8' }))
    return /^[\s\uFEFF]*\{/.test(head) ? 'ndjson' : 'csv'
  return 'csv'
}

/** Retry-After as seconds or an HTTP date; without one 1, 2, 4, 8 s; never over a minute. */
function retryDelay(header: string | null, attempt: number): number {
  const ms = header?.match(/^\d+$/) ? Number(header) * 1000 : Date.parse(header ?? '') - Date.now()
  return Math.min(60_000, Math.max(0, Number.isNaN(ms) ? 2 ** (attempt - 1) * 1000 : ms))
}

async function errorOf(response: Response): Promise<ItemError> {
  const body = (await response.json().catch(() => ({}))) as Partial<ItemError>
  return { code: `HTTP_${response.status}`, message: '', details: [], ...body }
}

/** Where the rows go and what becomes of them. */
type Sink = { endpoint: string; key: string; tally: Tally; reject: (row: Row, error: ItemError) => void }

/** A line for the person watching: rewritten in place on a terminal (unless kept), else one per line. */
function tell(line: string, keep = false) {
  const tty = process.stderr.isTTY
  process.stderr.write(tty ? `\r${line}\x1b[K${keep ? '\n' : ''}` : `${line}\n`)
}

/** One POST; 429 and 503 wait for Retry-After and try again, TRIES times in all. */
async function post(sink: Sink, body: string): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(sink.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': sink.key },
      body,
    }).catch((error: Error & { cause?: Error }) => {
      throw new CliError('UNREACHABLE', `cannot reach ${sink.endpoint}: ${(error.cause ?? error).message}`)
    })
    if ((response.status !== 429 && response.status !== 503) || attempt === TRIES) return response
    const wait = retryDelay(response.headers.get('retry-after'), attempt)
    await response.body?.cancel()
    tell(
      `server answered ${response.status}; trying again in ${wait / 1000} s (${attempt + 1}/${TRIES})`,
      true,
    )
    await sleep(wait)
  }
}

type Result = { duplicate?: boolean } | { index: number; error: ItemError }
const TOO_LARGE = { code: 'PAYLOAD_TOO_LARGE', message: 'this lead alone is over 10 MiB', details: [] }

/**
 * Sends rows as one batch, halved while it is over MAX_BODY or the server answers 413 (a proxy may
 * allow less), and tallies each row's result. Oversized bodies are split before sending because
 * Fastify closes the connection on one, so the client often sees EPIPE instead of the 413 (4 times
 * in 12 tries with 11 MB). Any other refusal of the whole batch (a bad key, a 429 that outlasted
 * its tries) stops the import.
 */
async function sendRows(sink: Sink, rows: Row[]): Promise<void> {
  const body = JSON.stringify({ leads: rows.map((row) => row.lead) })
  const response = Buffer.byteLength(body) > MAX_BODY ? undefined : await post(sink, body)
  if (!response || response.status === 413) {
    if (rows.length === 1) return sink.reject(rows[0] as Row, response ? await errorOf(response) : TOO_LARGE)
    await response?.body?.cancel()
    await sendRows(sink, rows.slice(0, Math.ceil(rows.length / 2)))
    return sendRows(sink, rows.slice(Math.ceil(rows.length / 2)))
  }
  if (response.status !== 202) {
    const { code, message } = await errorOf(response)
    const what = response.status === 401 || response.status === 403 ? 'the API key' : 'the batch'
    throw new CliError(code, `the server refused ${what} (${response.status} ${code}): ${message}`)
  }
  const { results } = (await response.json()) as { results?: Result[] }
  if (results?.length !== rows.length) throw new CliError('UNEXPECTED_RESPONSE', 'odd answer to a batch')
  sink.tally.batches++
  results.forEach((result, i) => {
    if ('error' in result)
      sink.reject(rows[i] as Row, { ...result.error, details: result.error.details ?? [] })
    else if (result.duplicate) sink.tally.duplicates++
    else sink.tally.accepted++
  })
}

/** `import`: a CSV or NDJSON file of leads through the batch API (operations.md §6). */
export const importLeads: Command = {
  usage: 'import FILE --api-key K [--industry retail] [--url U] [--rejects PATH]',
  options: {
    'api-key': { type: 'string' },
    industry: { type: 'string' },
    url: { type: 'string' },
    rejects: { type: 'string' },
  },
  needsContext: false,
  async run(_ctx, values, [file]) {
    // VENTAS_API_KEY keeps the key out of the process list (`ps`), where a flag is visible.
    const key = (values['api-key'] as string | undefined) ?? process.env.VENTAS_API_KEY
    const industry = (values.industry as string | undefined) ?? 'retail'
    if (!file || !key)
      throw new CliError('INVALID', 'usage: ventas import FILE --api-key K (or VENTAS_API_KEY)')
    if (!isIndustry(industry))
      throw new CliError('INVALID', `--industry is one of ${ALL_INDUSTRIES.join(', ')}`)
    const info = await stat(file).catch((error: Error) => {
      throw new CliError('NOT_FOUND', `cannot read ${file}: ${error.message}`)
    })
    if (!info.isFile()) throw new CliError('INVALID', `${file} is not a file`)
    const url = ((values.url as string) ?? `http://127.0.0.1:${process.env.PORT || 8080}`).replace(/\/+$/, '')
    const rejectsPath = (values.rejects as string | undefined) ?? `${file}.rejects.ndjson`
    const reasons: Record<string, number> = {}
    const found: (Row & { error: ItemError })[] = [] // this chunk's rejects, written in line order
    let out: WriteStream | undefined
    let writeFailure: Error | undefined
    const sink: Sink = {
      endpoint: `${url}/v2/leads/${industry}/batch`,
      key,
      tally: { total: 0, accepted: 0, duplicates: 0, rejected: 0, batches: 0 },
      reject: ({ line, lead }, error) => void found.push({ line, lead, error }),
    }
    const { tally } = sink
    const input = createReadStream(file, 'utf8')
    let chunk: Row[] = []
    const flush = async () => {
      const leads = chunk.filter((row) => !row.error)
      if (leads.length > 0) await sendRows(sink, leads)
      chunk = []
      for (const row of found.splice(0).sort((a, b) => a.line - b.line)) {
        tally.rejected++
        reasons[row.error.code] = (reasons[row.error.code] ?? 0) + 1
        out ??= createWriteStream(rejectsPath).on('error', (e) => {
          writeFailure ??= e
        })
        out.write(`${JSON.stringify(row)}\n`)
      }
      const done = `${Math.floor((100 * input.bytesRead) / (info.size || 1))}% of the file`
      const line = `imported ${tally.total} rows, ${done} (accepted ${tally.accepted}, duplicates ${tally.duplicates}, rejected ${tally.rejected})`
      tell(line)
      if (out?.writableNeedDrain) await once(out, 'drain').catch(() => {})
    }
    try {
      for await (const row of readRows(await formatOf(file), linesOf(input))) {
        tally.total++
        if (row.error) sink.reject(row, row.error)
        if (chunk.push(row) === CHUNK) await flush() // counts rows, not leads: the rejects held stay under CHUNK
      }
      if (chunk.length > 0) await flush()
    } catch (error) {
      const sent = tally.accepted + tally.duplicates
      if (!(error instanceof CliError) || sent === 0) throw error
      throw new CliError(error.code, `${error.message}\n${sent} rows were accepted before it stopped`)
    } finally {
      if (process.stderr.isTTY && tally.total > 0) process.stderr.write('\n')
      input.destroy()
      await new Promise((resolve) => (out ? out.end(resolve) : resolve(null)))
    }
    if (writeFailure) throw new CliError('INVALID', `cannot write ${rejectsPath}: ${writeFailure.message}`)
    const because = Object.entries(reasons).map(([code, n]) => `${code} ${n}`)
    const text = [
      `${file}: ${tally.total} rows in ${tally.batches} batches`,
      `  accepted    ${tally.accepted}`,
      `  duplicates  ${tally.duplicates} (received before: nothing stored again)`,
      `  rejected    ${tally.rejected}${because.length ? ` (${because.join(', ')})` : ''}`,
      ...(out ? [`  rejects     ${rejectsPath}`] : []),
    ]
    return { text: text.join('\n'), json: { file, ...tally, reasons, rejectsFile: out ? rejectsPath : null } }
  },
}
