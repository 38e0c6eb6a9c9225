import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import standaloneCode from 'ajv/dist/standalone/index.js'
import fastJson from 'fast-json-stringify'
import { buildApp } from '../app.js'
import { loadConfig } from '../config.js'
import { connect } from '../store/connect.js'
import { LEAD_SCHEMAS } from './schemas/lead.js'
import { serializersSeen } from './serialization.js'
import { createAjv, shapesSeen, validatorFor } from './validation.js'

/**
 * What `npm run build` compiles ahead of time, so that a start loads functions instead of
 * compiling them (src/http/built.ts): the sources of two CommonJS modules, each a Map from a
 * schema's key to its function. `validators`: one for every schema shape the app validates (each
 * route's, and each industry's lead, which batches check item by item), in Ajv's standalone code
 * with the options of src/http/validation.ts. `serializers`: one for every response schema, in
 * fast-json-stringify's standalone code, keyed as src/http/serialization.ts looks them up. The
 * app is built on a scratch database to register its routes, then closed; nothing is served.
 */
export async function precompiled(): Promise<{ validators: string; serializers: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ventas-build-'))
  try {
    const config = loadConfig({ DATABASE_URL: `sqlite:${join(dir, 'ventas.db')}`, LOG_LEVEL: 'silent' })
    const db = connect(config.storage, { poolSize: 1 })
    const app = await buildApp({ config, db, secretKey: Buffer.alloc(32), logger: false })
    await app.ready()
    await app.close()
    await db.destroy()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  for (const schema of Object.values(LEAD_SCHEMAS)) validatorFor(schema)
  const ajv = createAjv({ code: { source: true } })
  const validators = shapesSeen().map((shape) => [
    shape,
    standaloneCode.default(ajv, ajv.compile(JSON.parse(shape))),
  ])
  const serializers = [...serializersSeen()].map(([key, { schema, options }]) => [
    key,
    fastJson(schema, { ...options, mode: 'standalone' }),
  ])
  return { validators: mapModule(validators), serializers: mapModule(serializers) }
}

/** A module exporting a Map of the modules given (each `module.exports = …`), each run in a scope of its own. */
function mapModule(entries: string[][]): string {
  const items = entries.map(
    ([key, code]) =>
      `[${JSON.stringify(key)}, (() => { const module = { exports: {} }; ${code}; return module.exports })()]`,
  )
  return `'use strict'\nmodule.exports = new Map([\n${items.join(',\n')}\n])\n`
}
