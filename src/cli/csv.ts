/**
 * CSV for `ventas import`: RFC 4180 records read line by line (a file is never held in memory),
 * and a record turned into a lead by its header's field names.
 */
const LISTS = new Set(['phones', 'emails'])
/** The lead fields that are numbers (api.md §2.2); any other cell stays text, so a sku "00123" is kept. */
const NUMERIC = new Set(['priority', 'amount', 'lowerEstimate', 'upperEstimate', 'paymentMonthLength'])
/** Names the server's JSON parser refuses (prototype poisoning): one would fail a whole batch. */
export const POISON = new Set(['__proto__', 'constructor', 'prototype'])

export type CsvRecord = { line: number; raw: string } & ({ cells: string[] } | { error: string })

/**
 * RFC 4180 records from lines as readline yields them (without their ends). A quoted field may hold
 * commas, doubled quotes and line breaks, so a record can span lines; `line` is where it starts.
 * A quote inside an unquoted field, text after a closing quote, or a quote still open at the end
 * of the file makes that record an error. Blank lines between records are skipped.
 */
export async function* readCsvRecords(
  lines: AsyncIterable<string> | Iterable<string>,
): AsyncGenerator<CsvRecord> {
  let [number, start, quoted] = [0, 0, false]
  let raw: string[] = []
  let cells: string[] = []
  let field = ''
  for await (const text of lines) {
    number++
    if (quoted) field += '\n'
    else if (!text.trim()) continue
    else [start, raw, cells, field] = [number, [], [], '']
    raw.push(text)
    let error: string | undefined
    let closed = false // a quoted field just closed: only a comma or the end of the record may follow
    for (let i = 0; i < text.length && !error; i++) {
      const c = text[i] as string
      if (quoted) {
        if (c !== '"') field += c
        else if (text[i + 1] === '"') [field, i] = [`${field}"`, i + 1]
        else [quoted, closed] = [false, true]
      } else if (c === ',') [cells, field, closed] = [[...cells, field], '', false]
      else if (closed) error = `unexpected ${JSON.stringify(c)} after a closing quote (column ${i + 1})`
      else if (c === '"' && field === '') quoted = true
      else if (c === '"') error = `a quote inside an unquoted field (column ${i + 1})`
      else field += c
    }
    if (error) yield { line: start, raw: raw.join('\n'), error }
    else if (!quoted) yield { line: start, raw: raw.join('\n'), cells: [...cells, field] }
  }
  if (quoted)
    yield { line: start, raw: raw.join('\n'), error: 'a quoted field is still open at the end of the file' }
}

/**
 * A CSV row as a lead: `phones` and `emails` split on `|`, dotted names nested (`product.price.amount`),
 * the numeric fields parsed, empty cells left out (so an empty utmSource is a missing one).
 */
export function leadOfRow(header: string[], cells: string[]): Record<string, unknown> {
  const lead: Record<string, unknown> = {}
  header.forEach((name, i) => {
    const value = cells[i]?.trim()
    const path = name.split('.')
    if (!value || path.some((part) => !part || POISON.has(part))) return
    const key = path.pop() as string
    let target = lead
    for (const part of path) {
      if (typeof target[part] !== 'object') target[part] = {}
      target = target[part] as Record<string, unknown>
    }
    if (LISTS.has(name)) target[key] = value.split('|').flatMap((v) => (v.trim() ? [v.trim()] : []))
    else target[key] = NUMERIC.has(key) && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value
  })
  return lead
}
