// Bad input: clear errors of the right class with a code, never a crash.
// The messages for documents come from the Rust core (src/state/validate.rs); the
// JS fast path (in-memory documents) and the Rust validator (text) agree.
import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const lib = require('../index.js')
const native = require('../binding.js')

function thrown(f: () => unknown): any {
  try {
    f()
  } catch (e) {
    return e
  }
  throw new Error('expected a throw')
}

const P = 'not a state document: '

// [JSON text, message] — every row is JSON that is not a state document.
const notStates: [string, string][] = [
  ['null', `${P}the document must be an object, got null`],
  ['[]', `${P}the document must be an object, got array`],
  ['[{"version":1,"entries":{}}]', `${P}the document must be an object, got array`],
  ['1', `${P}the document must be an object, got number`],
  ['"s"', `${P}the document must be an object, got string`],
  ['true', `${P}the document must be an object, got boolean`],
  ['{}', `${P}version is missing (expected 1)`],
  ['{"entries":{}}', `${P}version is missing (expected 1)`],
  ['{"version":2,"entries":{}}', `${P}version must be 1, got 2`],
  ['{"version":"1","entries":{}}', `${P}version must be 1, got "1"`],
  ['{"version":1}', `${P}entries is missing (expected an object)`],
  [`{"version":"${'v'.repeat(64)}","entries":{}}`, `${P}version must be 1, got "${'v'.repeat(64)}"`],
  [`{"version":"${'v'.repeat(65)}","entries":{}}`, `${P}version must be 1, got string`],
  ['{"version":1,"entries":null}', `${P}entries must be an object, got null`],
  ['{"version":1,"entries":[]}', `${P}entries must be an object, got array`],
  ['{"version":1,"entries":"x"}', `${P}entries must be an object, got string`],
  ['{"version":1,"entries":{"a":1}}', `${P}entries["a"] must be an object, got number`],
  ['{"version":1,"entries":{"a":null}}', `${P}entries["a"] must be an object, got null`],
  ['{"version":1,"entries":{"a":{}}}', `${P}entries["a"].result is missing (expected an object)`],
  ['{"version":1,"entries":{"a":{"result":[]}}}', `${P}entries["a"].result must be an object, got array`],
  ['{"version":1,"entries":{"a":{"result":{}}}}', `${P}entries["a"].result.ok is missing (expected a boolean)`],
  ['{"version":1,"entries":{"a":{"result":{"ok":1}}}}', `${P}entries["a"].result.ok must be a boolean, got number`],
  ['{"version":1,"entries":{"a":{"result":{"ok":"true"}}}}', `${P}entries["a"].result.ok must be a boolean, got string`],
  [
    '{"version":1,"entries":{"a":{"result":{"ok":false,"cause":{"type":"weird"}}}}}',
    `${P}entries["a"].result.cause.type must be "error", "value" or "undefined", got "weird"`,
  ],
  [
    '{"version":1,"entries":{"a":{"result":{"ok":false,"cause":{}}}}}',
    `${P}entries["a"].result.cause.type is missing (expected "error", "value" or "undefined")`,
  ],
  ['{"version":1,"entries":{"a":{"result":{"ok":false,"cause":5}}}}', `${P}entries["a"].result.cause must be an object, got number`],
  ['{"version":1,"entries":{"a":{"result":{"ok":true},"meta":"m"}}}', `${P}entries["a"].meta must be an object, got string`],
  ['{"version":1,"entries":{"a":{"result":{"ok":true},"meta":{}}}}', `${P}entries["a"].meta.origin is missing (expected "result" or "throw")`],
  [
    '{"version":1,"entries":{"a":{"result":{"ok":true},"meta":{"origin":"result","resultCause":{"type":1}}}}}',
    `${P}entries["a"].meta.resultCause.type must be "error", "value" or "undefined", got 1`,
  ],
  [
    '{"version":1,"entries":{"a":{"result":{"ok":true},"meta":{"origin":"throw","thrown":[]}}}}',
    `${P}entries["a"].meta.thrown must be an object, got array`,
  ],
  // first problem in JS property order: "7" comes before "b"
  ['{"version":1,"entries":{"b":{},"7":1}}', `${P}entries["7"] must be an object, got number`],
  // keys quoted like JSON.stringify, lone surrogates included
  ['{"version":1,"entries":{"\\ud800\\n\\"":1}}', `${P}entries["\\ud800\\n\\""] must be an object, got number`],
  ['{"version":1,"entries":{"__proto__":1}}', `${P}entries["__proto__"] must be an object, got number`],
  // a raw (unescaped) lone surrogate and other odd units in the text: crosses to Rust losslessly
  ['{"version":1,"entries":{"\ud800\u2028\u007f\\u0001":1}}', `${P}entries["\\ud800\u2028\u007f\\u0001"] must be an object, got number`],
]

describe('parseState', () => {
  it('throws V8 JSON.parse\'s SyntaxError (exact message) with code ERR_JSON_SYNTAX for text that is not JSON', () => {
    for (const text of ['', '{not json', '{"version":1,"entries":{}} x', '\ufeff{"version":1,"entries":{}}', '{"a":1,}']) {
      const e = thrown(() => lib.parseState(text))
      expect(e).toBeInstanceOf(SyntaxError)
      expect(e.message).toBe(thrown(() => JSON.parse(text)).message)
      expect(e.code).toBe('ERR_JSON_SYNTAX')
    }
    expect(thrown(() => lib.parseState(undefined))).toBeInstanceOf(SyntaxError)
  })

  it.each(notStates)('TypeError naming the problem: %s', (text, message) => {
    const e = thrown(() => lib.parseState(text))
    expect(e).toBeInstanceOf(TypeError)
    expect(e.code).toBe('ERR_INVALID_DOCUMENT')
    expect(e.message).toBe(message)
  })

  it('the Rust validator and the JS fast path agree on every row (same message, same code)', () => {
    for (const [text, message] of notStates) {
      const fromRust = thrown(() => native.validateState(text))
      expect(fromRust.message, text).toBe(message)
      expect(fromRust.code).toBe('ERR_INVALID_DOCUMENT')
      expect(fromRust).toBeInstanceOf(TypeError)
      const fromObject = thrown(() => lib.deserializeState(JSON.parse(text)))
      expect(fromObject.message, text).toBe(message)
      expect(fromObject.code).toBe('ERR_INVALID_DOCUMENT')
      expect(fromObject).toBeInstanceOf(TypeError)
    }
  })

  it('the Rust validator accepts every document stringifyState writes, and null optional members', () => {
    const s = {
      steps: new Map<string, any>([
        ['a', { result: lib.ok({ x: [1, '\ud800'] }) }],
        ['b', { result: lib.err('E', { cause: new Error('c') }), meta: { origin: 'result', resultCause: 1 } }],
        ['c', { result: lib.err('E'), meta: { origin: 'throw', thrown: undefined } }],
        ['5', { result: lib.ok(undefined) }],
      ]),
    }
    expect(native.validateState(lib.stringifyState(s, { m: 1 }))).toBeUndefined()
    const nulls = '{"version":1,"entries":{"a":{"result":{"ok":false,"error":null,"cause":null},"meta":null}}}'
    expect(native.validateState(nulls)).toBeUndefined()
    expect(lib.parseState(nulls).steps.get('a')).toEqual({ result: { ok: false, error: null }, meta: undefined })
  })

  it('lenient cases, our choice: an array is not a state document; only version 1 is read', () => {
    expect(thrown(() => lib.parseState('[]')).message).toBe(`${P}the document must be an object, got array`)
    const v99 = { version: 99, entries: { a: { result: { ok: true, value: 1 } } }, metadata: { x: 1 } }
    const e = thrown(() => lib.deserializeState(v99))
    expect(e).toBeInstanceOf(TypeError)
    expect(e.code).toBe('ERR_INVALID_DOCUMENT')
    expect(e.message).toBe(`${P}version must be 1, got 99`)
  })
})

describe('deserialize* on null and garbage', () => {
  const fns = ['deserializeCause', 'deserializeResult', 'deserializeMeta', 'deserializeEntry'] as const
  it.each(fns)('%s throws TypeError ERR_INVALID_ARG naming the argument for non-objects', (fn) => {
    for (const [bad, kind] of [
      [null, 'null'],
      [undefined, 'missing'],
      [5, 'number'],
      ['x', 'string'],
    ] as const) {
      const e = thrown(() => lib[fn](bad))
      expect(e).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG')
      expect(e.message).toBe(`${fn}: serialized must be an object, got ${kind}`)
    }
  })

  it('deserializeEntry names a missing result; deserializeResult names a garbage cause', () => {
    expect(thrown(() => lib.deserializeEntry({})).message).toBe('deserializeEntry: serialized.result must be an object, got missing')
    expect(thrown(() => lib.deserializeResult({ ok: false, error: 'E', cause: 'x' })).message).toBe(
      'deserializeCause: serialized must be an object, got string',
    )
  })

  it('keeps the JS module\'s permissive single-value behaviour the vectors record', () => {
    expect(lib.deserializeCause({ type: 'weird', value: 1 })).toBe(1)
    expect(lib.deserializeResult({ ok: 1, value: 2 })).toEqual({ ok: true, value: 2 })
    expect(lib.deserializeMeta({ origin: 'other' })).toEqual({ origin: 'throw', thrown: undefined })
  })

  it('deserializeState of null / missing entries throws ERR_INVALID_DOCUMENT', () => {
    for (const [bad, message] of [
      [null, `${P}the document must be an object, got null`],
      [{ version: 1 }, `${P}entries is missing (expected an object)`],
      [{ version: 1, entries: { a: { result: { ok: true }, meta: { origin: 'throw', thrown: () => 1 } } } }, `${P}entries["a"].meta.thrown must be an object, got function`],
    ] as const) {
      const e = thrown(() => lib.deserializeState(bad))
      expect(e).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_DOCUMENT')
      expect(e.message).toBe(message)
    }
  })
})

describe('serialize* and stringifyState on bad input', () => {
  it('stringifyState: circular and BigInt values throw V8\'s TypeError (code ERR_INVALID_ARG), in entries and metadata', () => {
    const circ: any = { a: 1 }
    circ.self = circ
    const cases = [
      () => lib.stringifyState({ steps: new Map([['c', { result: lib.ok(circ) }]]) }),
      () => lib.stringifyState({ steps: new Map([['b', { result: lib.ok(1n) }]]) }),
      () => lib.stringifyState({ steps: new Map() }, { n: 1n }),
      () => lib.stringifyState({ steps: new Map() }, circ),
    ]
    for (const f of cases) {
      const e = thrown(f)
      expect(e).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG')
    }
  })

  it('an error thrown by a user toJSON propagates untouched', () => {
    const boom = new Error('mine')
    const e = thrown(() => lib.stringifyState({ steps: new Map() }, { toJSON: () => { throw boom } }))
    expect(e).toBe(boom)
    expect(e.code).toBeUndefined()
  })

  it('non-object states, steps, entries and results throw TypeError ERR_INVALID_ARG naming the argument', () => {
    const rows: [() => unknown, string][] = [
      [() => lib.stringifyState(null), 'stringifyState: state must be a ResumeState object, got null'],
      [() => lib.stringifyState({}), 'stringifyState: state.steps must be a Map, got missing'],
      [() => lib.serializeState({ steps: 5 }), 'serializeState: state.steps must be a Map, got number'],
      [() => lib.stringifyState({ steps: new Map([['a', null]]) }), 'serializeEntry: entry must be an object, got null'],
      [() => lib.stringifyState({ steps: new Map([['a', {}]]) }), 'serializeEntry: entry.result must be a Result object, got missing'],
      [() => lib.serializeResult(undefined), 'serializeResult: result must be a Result object, got missing'],
      [() => lib.serializeMeta(null), 'serializeMeta: meta must be an object, got null'],
    ]
    for (const [f, message] of rows) {
      const e = thrown(f)
      expect(e).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG')
      expect(e.message).toBe(message)
    }
  })
})
