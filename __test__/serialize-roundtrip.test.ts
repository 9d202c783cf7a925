// Round trips: every value JSON can hold survives stringifyState → parseState
// exactly; the document text is byte-identical to
// JSON.stringify(serializeState(...)); depth never overflows a native stack.
import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const lib = require('../index.js')
const { stringifyState, parseState, serializeState, deserializeState, serializeResult, deserializeResult, ok, err } = lib

const state = (pairs: [unknown, unknown][]) => ({ steps: new Map(pairs) })
const okEntry = (value: unknown) => ({ result: ok(value) })

function roundTrip(s: { steps: Map<any, any> }, metadata?: unknown) {
  const text = stringifyState(s, metadata)
  expect(text).toBe(JSON.stringify(serializeState(s, metadata)))
  return { text, back: parseState(text) }
}

describe('stringifyState → parseState round trip', () => {
  it('keeps strings with lone surrogates, in values, value keys, entry keys and metadata', () => {
    const odd = ['\ud800', '\udc00', 'x\ud800y', '\udc00\ud800', '😀', '\u2028\u2029', '"\\\n\u0000']
    const pairs: [string, unknown][] = odd.map((k, i) => [k + i, okEntry({ [k]: k, list: [k] })])
    const s = state(pairs)
    const meta = { ['m\ud800']: 'v\udfff' }
    const { text, back } = roundTrip(s, meta)
    expect(text).toContain('\\ud800')
    expect([...back.steps.keys()]).toEqual(pairs.map(([k]) => k))
    for (const [k, e] of pairs) expect(back.steps.get(k).result).toEqual((e as any).result)
    expect(JSON.parse(text).metadata).toEqual(meta)
  })

  it('keeps __proto__ keys inside values as own keys and never touches a prototype', () => {
    const value = JSON.parse('{"__proto__":{"polluted":true},"safe":1,"nested":{"__proto__":[1]}}')
    const { back } = roundTrip(state([['a', okEntry(value)]]), JSON.parse('{"__proto__":{"m":1}}'))
    const v = back.steps.get('a').result.value
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype)
    expect(Object.keys(v)).toEqual(['__proto__', 'safe', 'nested'])
    expect(Object.getOwnPropertyDescriptor(v, '__proto__')!.value).toEqual({ polluted: true })
    expect((v as any).polluted).toBeUndefined()
    expect(Object.getOwnPropertyDescriptor(v.nested, '__proto__')!.value).toEqual([1])
    expect(({} as any).polluted).toBeUndefined()
  })

  it('drops a __proto__ step key like the JS module did, without touching a prototype', () => {
    const s = state([['__proto__', okEntry(1)], ['b', okEntry(2)]])
    expect(stringifyState(s)).toBe('{"version":1,"entries":{"b":{"result":{"ok":true,"value":2}}}}')
    const serialized = serializeState(s)
    expect(Object.getPrototypeOf(serialized.entries)).toBe(Object.prototype)
    expect(Object.keys(serialized.entries)).toEqual(['b'])
  })

  it('numbers: -0 becomes 0, 1e21, 5e-324, max safe integer and floats survive', () => {
    const nums = [-0, 1e21, 5e-324, Number.MAX_SAFE_INTEGER, -Number.MAX_VALUE, 0.1, 1.7976931348623157e308]
    const { text, back } = roundTrip(state(nums.map((n, i) => [`n${i}`, okEntry(n)])))
    expect(text).toContain('"value":1e+21')
    expect(text).toContain('"value":5e-324')
    const got = [...back.steps.values()].map((e: any) => e.result.value)
    expect(Object.is(got[0], 0)).toBe(true)
    expect(got.slice(1)).toEqual(nums.slice(1))
  })

  it('entry order: insertion order, with array-index keys first ascending (as a JS object orders them)', () => {
    const keys = ['b', '10', 'a', '2', '01', '-1', '1.5', '4294967295', '4294967294', '0', 'z']
    const { text, back } = roundTrip(state(keys.map((k) => [k, okEntry(k)])))
    const expected = ['0', '2', '10', '4294967294', 'b', 'a', '01', '-1', '1.5', '4294967295', 'z']
    expect([...back.steps.keys()]).toEqual(expected)
    expect(Object.keys(JSON.parse(text).entries)).toEqual(expected)
  })

  it('large states (assembled from several chunks) are byte-identical, order and odd strings included', () => {
    const pairs: [string, unknown][] = []
    for (let i = 0; i < 700; i++) {
      const key = i % 50 === 0 ? String(1000 - i) : i % 7 === 0 ? `k\ud800${i}` : `step:${i}`
      const value = i % 3 === 0 ? { text: '日本語 ✓ \udc00', n: i } : { id: i, tags: ['a', 'b'] }
      pairs.push([key, i % 5 === 0 ? { result: err('E', { cause: new Error(`c${i}`) }) } : okEntry(value)])
    }
    const s = state(pairs)
    const { text, back } = roundTrip(s, { run: 'r\ud800' })
    expect(back.steps.size).toBe(700)
    expect([...back.steps.keys()]).toEqual(Object.keys(serializeState(s).entries))
    const latin = state(pairs.filter((_, i) => i % 3 !== 0 && i % 7 !== 0))
    expect(stringifyState(latin)).toBe(JSON.stringify(serializeState(latin)))
    expect(text.length).toBeGreaterThan(10_000)
  })

  it('non-string and duplicate step keys behave like object property keys', () => {
    const sym = Symbol('s')
    const s = state([[1, okEntry('one')], ['1', okEntry('uno')], [sym, okEntry('sym')], ['x', okEntry('x')]])
    const { back } = roundTrip(s)
    expect([...back.steps.entries()].map(([k, e]: any) => [k, e.result.value])).toEqual([
      ['1', 'uno'],
      ['x', 'x'],
    ])
    const arrayOfPairs = { steps: [['a', okEntry(1)], ['b', okEntry(2)], ['a', okEntry(3)]] }
    expect(stringifyState(arrayOfPairs)).toBe(JSON.stringify(serializeState(arrayOfPairs)))
    expect(parseState(stringifyState(arrayOfPairs)).steps.get('a').result.value).toBe(3)
  })

  it('errors, causes and metas survive (stack kept, name kept)', () => {
    const cause = new TypeError('boom')
    const s = state([
      ['e', { result: err('E', { cause }), meta: { origin: 'result', resultCause: cause } }],
      ['t', { result: err({ code: 1 }), meta: { origin: 'throw', thrown: 'x' } }],
    ])
    const { back } = roundTrip(s, { at: new Date(0) })
    const e = back.steps.get('e')
    expect(e.result.cause).toBeInstanceOf(Error)
    expect(e.result.cause.name).toBe('TypeError')
    expect(e.result.cause.message).toBe('boom')
    expect(e.result.cause.stack).toBe(cause.stack)
    expect(e.meta.origin).toBe('result')
    expect(back.steps.get('t')).toEqual({ result: { ok: false, error: { code: 1 } }, meta: { origin: 'throw', thrown: 'x' } })
  })

  it('metadata: absent, null, primitive, toJSON with its key, and empty states', () => {
    const empty = state([])
    expect(stringifyState(empty)).toBe('{"version":1,"entries":{}}')
    expect(stringifyState(empty, null)).toBe('{"version":1,"entries":{},"metadata":null}')
    expect(stringifyState(empty, 'm')).toBe('{"version":1,"entries":{},"metadata":"m"}')
    expect(stringifyState(empty, () => 1)).toBe('{"version":1,"entries":{}}')
    const keyed = { toJSON: (key: string) => `key=${key}` }
    expect(stringifyState(empty, keyed)).toBe(JSON.stringify(serializeState(empty, keyed)))
  })

  it('serializeResult/deserializeResult round trip through JSON', () => {
    const r = err('E', { cause: new Error('c') })
    const back = deserializeResult(JSON.parse(JSON.stringify(serializeResult(r))))
    expect(back.ok).toBe(false)
    expect(back.cause.message).toBe('c')
    expect(deserializeState(serializeState(state([['a', okEntry([1, { b: null }])]]))).steps.get('a')).toEqual({
      result: { ok: true, value: [1, { b: null }] },
      meta: undefined,
    })
  })
})


describe('depth', () => {
  it('parseState of a state whose value holds a 100,000-deep array parses', () => {
    const n = 100_000
    const text = `{"version":1,"entries":{"a":{"result":{"ok":true,"value":${'['.repeat(n)}${']'.repeat(n)}}}}}`
    const back = parseState(text)
    let v = back.steps.get('a').result.value
    let depth = 0
    while (Array.isArray(v)) {
      depth++
      v = v[0]
    }
    expect(depth).toBe(n)
  })

  it('the Rust validator walks a 100,000-deep value on the error path without recursion', () => {
    const n = 100_000
    const text = `{"version":1,"entries":{"a":{"result":{"ok":true,"value":${'['.repeat(n)}${']'.repeat(n)}}},"b":{"result":{"ok":"yes"}}}}`
    expect(() => parseState(text)).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_DOCUMENT', message: 'not a state document: entries["b"].result.ok must be a boolean, got string' }),
    )
  })

  function nested(n: number): unknown {
    let v: unknown = 'leaf'
    for (let i = 0; i < n; i++) v = [v]
    return v
  }

  it('stringifyState of a 10,000-deep value succeeds, or throws the RangeError JSON.stringify throws', () => {
    const s = state([['deep', okEntry(nested(10_000))]])
    let text: string | undefined
    try {
      text = stringifyState(s)
    } catch (e) {
      expect(e).toBeInstanceOf(RangeError)
    }
    if (text !== undefined) {
      expect(text).toBe(JSON.stringify(serializeState(s)))
      expect(parseState(text).steps.get('deep').result.value).toEqual(nested(10_000))
    }
  })

  it('a value too deep for JSON.stringify gives its RangeError and the process lives', () => {
    const s = state([['deep', okEntry(nested(2_000_000))]])
    expect(() => stringifyState(s)).toThrow(RangeError)
    expect(stringifyState(state([['a', okEntry(1)]]))).toBe('{"version":1,"entries":{"a":{"result":{"ok":true,"value":1}}}}')
  })
})
