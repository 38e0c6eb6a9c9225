import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { before, describe, test } from 'node:test'
import type { ValidateFunction } from 'ajv'
import fastJson from 'fast-json-stringify'
import { precompiled } from '../../src/http/precompiled.js'
import { LEAD_SCHEMAS } from '../../src/http/schemas/lead.js'
import { keyOf, serializersSeen } from '../../src/http/serialization.js'
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
    const t = await createTestApp()
    const s = await seed(t.db, t.secretKey)
    for (const [url, body] of [
      ['/v1/lead/retail', fixture('retail-webform.json')],
      ['/v2/leads/retail', fixture('whatsapp-inbound.json')],
      ['/v1/lead/retail', { firstName: 'Ana' }],
    ] as const) {
      const answer = await t.app.inject({
        method: 'POST',
        url,
        payload: body,
        headers: { 'x-api-key': s.keys.all },
      })
      answers.push(answer.json())
    }
    shapesOfAnApp = shapesSeen()
    keysOfAnApp = [...serializersSeen().keys()]
    await t.close()
    const built = await precompiled()
    validators = load(built.validators)
    serializers = load(built.serializers)
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

  test('judge lead bodies as the validators compiled at start do', () => {
    const ajv = createAjv()
    const bodies = [
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
    let refused = 0
    for (const schema of Object.values(LEAD_SCHEMAS)) {
      const ahead = validators.get(JSON.stringify(schema)) as ValidateFunction
      const atStart = ajv.compile(schema)
      for (const body of bodies) {
        const [a, b] = [structuredClone(body), structuredClone(body)]
        const valid = ahead(a)
        assert.equal(valid, atStart(b), JSON.stringify(body).slice(0, 80))
        assert.deepEqual(ahead.errors ?? null, atStart.errors ?? null)
        assert.deepEqual(a, b)
        if (!valid) refused += 1
      }
    }
    assert.ok(refused >= 5 * 3, `only ${refused} refusals: the invalid bodies must be refused`)
  })

  test("write an app's answers as the serializers built at start do", () => {
    assert.equal(answers.length, 3)
    let written = 0
    for (const [key, { schema, options }] of serializersSeen()) {
      assert.equal(keyOf({ schema, options }), key)
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
    assert.ok(written >= 3, `only ${written} answers were written in full`)
  })
})
