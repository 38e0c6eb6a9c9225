import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { before, describe, test } from 'node:test'
import type { ValidateFunction } from 'ajv'
import fastJson from 'fast-json-stringify'
import { precompiled } from '../../src/http/precompiled.js'
import { LEAD_SCHEMAS } from '../../src/http/schemas/lead.js'
import { serializersSeen } from '../../src/http/serialization.js'
import { createAjv, shapesSeen } from '../../src/http/validation.js'
import { createTestApp } from '../helper.js'
import { seed } from '../seed.js'

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../../shared/fixtures/leads/${name}`, import.meta.url), 'utf8'))

/** Loads a module's source as Node loads dist/validators.cjs, its requires resolved from this project. */
function load<F>(source: string): Map<string, F> {
  const module = { exports: new Map<string, F>() }
  new Function('module', 'exports', 'require', source)(module, module.exports, createRequire(import.meta.url))
  return module.exports
}

/**
 * What `npm run build` compiles ahead of time (src/http/precompiled.ts): a validator for every
 * shape a running app validates and a serializer for every response schema, each doing exactly
 * what the function compiled at start would: the same answer and errors, the same defaults added,
 * extra properties removed and types coerced; the same JSON written.
 */
describe('precompiled validators and serializers', () => {
  let validators: Map<string, ValidateFunction>
  let serializers: Map<string, (data: unknown) => string>
  let shapesOfAnApp: string[]
  let keysOfAnApp: string[]
  /** Answers of a running app: what the serializers write. */
  const answers: unknown[] = []
  before(async () => {
    // First, as the build does in a process of its own; an app built after it adds to the shapes
    // seen whatever the build missed.
    const built = await precompiled()
    validators = load(built.validators)
    serializers = load(built.serializers)
    const t = await createTestApp()
    const s = await seed(t.db, t.secretKey)
    const send = async (method: 'GET' | 'POST', url: string, payload?: object) => {
      const answer = await t.app.inject({ method, url, payload, headers: { 'x-api-key': s.keys.all } })
      answers.push(answer.json())
      return answer.json()
    }
    const created = await send('POST', '/v1/lead/retail', fixture('retail-webform.json'))
    await send('GET', `/v1/prospect/${created.id}`)
    await send('POST', '/v2/leads/retail', fixture('whatsapp-inbound.json'))
    await send('POST', '/v2/leads/retail/batch', {
      leads: [{ emails: ['lote@loja.com.br'] }, { phones: '12' }],
    })
    await send('POST', '/v1/lead/retail', { firstName: 'Ana' })
    shapesOfAnApp = shapesSeen()
    keysOfAnApp = [...serializersSeen().keys()]
    await t.close()
  })

  test('cover every schema an app validates or answers with, and every industry lead', () => {
    assert.ok(shapesOfAnApp.length > 20, `an app validated only ${shapesOfAnApp.length} shapes`)
    assert.deepEqual(
      shapesOfAnApp.filter((shape) => !validators.has(shape)),
      [],
    )
    for (const schema of Object.values(LEAD_SCHEMAS)) assert.ok(validators.has(JSON.stringify(schema)))
    assert.ok(keysOfAnApp.length > 20, `an app built only ${keysOfAnApp.length} serializers`)
    assert.deepEqual(
      keysOfAnApp.filter((key) => !serializers.has(key)),
      [],
    )
  })

  test('judge bodies, queries and headers as the validators compiled at start do', () => {
    const ajv = createAjv()
    const bodies = [
      {},
      { limit: '5', offset: '-1', search: ['a', 'b'], id: 'x' },
      { 'x-api-key': 'k', 'idempotency-key': '' },
      'text',
      7,
      fixture('retail-webform.json'),
      fixture('insurance-paypal.json'),
      fixture('vehicle-mercadolibre.json'),
      fixture('real-estate.json'),
      fixture('saving-plan.json'),
      fixture('whatsapp-inbound.json'),
      { firstName: 'Ana', phones: ['+55 51 98765 4321'], unknownField: 'removed' },
      { firstName: 'Ana', priority: '2', phones: '+55 51 98765 4321' }, // coerced: a number, an array
      { firstName: 42, phones: [123], emails: ['not-an-email'], priority: 'high' },
      { firstName: 'x'.repeat(10_000), emails: 'a@b.c', product: { price: { amount: 'free' } } },
      [],
      null,
    ]
    let [accepted, refused] = [0, 0]
    for (const [shape, ahead] of validators) {
      const atStart = ajv.compile(JSON.parse(shape))
      for (const body of bodies) {
        const [a, b] = [structuredClone(body), structuredClone(body)]
        // As Fastify calls them, so that a part coerced as a whole lands in its parent.
        const [pa, pb] = [{ part: a }, { part: b }]
        const valid = ahead(a, { parentData: pa, parentDataProperty: 'part' } as never)
        assert.equal(valid, atStart(b, { parentData: pb, parentDataProperty: 'part' } as never))
        assert.deepEqual(ahead.errors ?? null, atStart.errors ?? null)
        assert.deepEqual(pa, pb)
        if (valid) accepted += 1
        else refused += 1
      }
    }
    assert.ok(accepted > 50 && refused > 50, `${accepted} accepted and ${refused} refused: both must be many`)
    for (const schema of Object.values(LEAD_SCHEMAS)) {
      const ahead = validators.get(JSON.stringify(schema)) as ValidateFunction
      assert.equal(ahead({ firstName: 'Ana', phones: ['+55 51 98765 4321'] }), true)
      assert.equal(ahead({ firstName: 'Ana', phones: [{}] }), false)
    }
  })

  test("write an app's answers as the serializers built at start do", () => {
    assert.equal(answers.length, 5)
    let written = 0
    for (const [key, { schema, options }] of serializersSeen()) {
      const ahead = serializers.get(key) as (data: unknown) => string
      const atStart = fastJson(schema, options)
      for (const answer of [...answers, {}, []]) {
        const outcome = (serialize: (data: unknown) => string) => {
          try {
            return serialize(answer)
          } catch (error) {
            return `threw ${(error as Error).message}`
          }
        }
        const json = outcome(ahead)
        assert.equal(json, outcome(atStart))
        if (!json.startsWith('threw') && json.length > 100) written += 1
      }
    }
    assert.ok(written >= 5, `only ${written} answers were written in full`)
  })
})
