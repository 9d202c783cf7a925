// Differential test of `awaitly-persistence-native/snapshot` against awaitly's
// own helpers: 1.35's `awaitly/persistence` (the devDependency) and 4.5.1's
// `awaitly/durable` (from .ci/awaitly4: compared whenever it is installed;
// .ci/run installs it and requires the comparison, see helpers/awaitly.ts). Both run on the same
// seeded random inputs and must agree, value for value (own keys in order,
// prototypes, enumerability, NaN/-0), or fail the same way (same class and
// message).
// Where we differ on purpose (README "The /snapshot subpath"), the test
// asserts the documented difference, never skips the input.
// CI runs a few hundred inputs per function; AWAITLY_STRESS=1 (`npm run
// stress`) runs 20 times as many.
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { createRequire } from 'node:module'
import * as theirs135 from 'awaitly/persistence'
import { durable } from 'awaitly/durable'
import { ok } from 'awaitly'
import { awaitly4 } from '../helpers/awaitly'

const require = createRequire(import.meta.url)
const ours = require('../../snapshot.js')
const esmOurs = () => import('../../snapshot.mjs' as string)

const N = process.env.AWAITLY_STRESS === '1' ? 6000 : 300

/** The awaitly builds we must agree with: 1.35 always, 4.5.1 when installed (always in CI). */
const aw4 = awaitly4()
const REFERENCES: Array<{ version: string; helpers: any }> = [
  { version: '1.35', helpers: theirs135 },
  ...(aw4 ? [{ version: aw4.version, helpers: aw4.load('./durable') }] : []),
]
/**
 * The reference under test: each `describe.each(REFERENCES)` block sets it in
 * its beforeAll (vitest runs the blocks one after another), and the helpers
 * below compare against it.
 */
let theirs: any = theirs135

// ---------------------------------------------------------------------------
// seeded generator

function rng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  const pick = <T,>(xs: readonly T[]): T => xs[int(xs.length)]
  const chance = (p: number) => next() < p
  return { next, int, pick, chance }
}
type R = ReturnType<typeof rng>

const LONE = ['\ud800', '\udfff', 'a\ud83d', '\ude00b']
function str(r: R): string {
  switch (r.int(8)) {
    case 0:
      return ''
    case 1:
      return r.pick(LONE)
    case 2:
      return r.pick(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'])
    case 3:
      // long, with a surrogate pair straddling the 1000-unit cut now and then
      return 'x'.repeat(998 + r.int(4)) + '😀'.repeat(1 + r.int(3))
    case 4:
      return `s${r.int(5)}`
    default: {
      let s = ''
      const n = r.int(6)
      for (let i = 0; i < n; i++) s += String.fromCharCode(r.chance(0.1) ? 0xd800 + r.int(0x800) : 32 + r.int(95))
      return s
    }
  }
}

/** An own property, even `__proto__` (as JSON.parse makes it). */
function put(o: any, k: string, v: unknown) {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
}

function json(r: R, depth: number): any {
  const k = depth <= 0 ? r.int(5) : r.int(8)
  switch (k) {
    case 0:
      return null
    case 1:
      return r.chance(0.5)
    case 2:
      return r.pick([0, -0, 1, -1.5, 1e21, Number.MAX_SAFE_INTEGER, r.int(1000)])
    case 3:
    case 4:
      return str(r)
    case 5:
    case 6: {
      const o: any = {}
      const n = r.int(4)
      for (let i = 0; i < n; i++) put(o, str(r), json(r, depth - 1))
      return o
    }
    default:
      return Array.from({ length: r.int(4) }, () => json(r, depth - 1))
  }
}

class Custom {
  x = 1
}
class MyError extends Error {
  extra = 'field'
}

function thrownValue(r: R): unknown {
  switch (r.int(22)) {
    case 0:
      return str(r)
    case 1:
      return r.pick([0, -0, NaN, Infinity, -Infinity, 42, 1.5])
    case 2:
      return null
    case 3:
      return undefined
    case 4:
      return r.chance(0.5) ? Symbol(str(r)) : Symbol()
    case 5:
      return BigInt(r.int(1e6)) * (r.chance(0.5) ? 1n : 10n ** 30n)
    case 6:
      return r.pick([function named() {}, () => 1, class K {}, async function af() {}])
    case 7:
    case 8:
      return json(r, 3)
    case 9: {
      const o: any = json(r, 1) ?? {}
      if (typeof o === 'object') o.self = o // circular
      return o
    }
    case 10:
      return Object.assign(Object.create(null), { a: 1 })
    case 11: {
      const j = json(r, 2)
      const text = str(r)
      return { toJSON: () => j, toString: () => text }
    }
    case 12:
      return { toJSON() { throw new Error('no json') } }
    case 13:
      return { toString() { throw new Error('no string') }, [Symbol.toPrimitive]: undefined }
    case 14:
      return new Date(r.int(2e12))
    case 15:
      return new Map([[1, 2]])
    case 16:
      return new Custom()
    case 17:
      return r.pick([{ constructor: 5 }, { constructor: null }, { constructor: { name: 42 } }, { constructor: { name: 'Fake' } }])
    case 18:
      return r.pick([Object(1), Object('s'), Object(true)])
    case 19:
      return { big: 1n }
    case 20: {
      let o: any = { leaf: 1 }
      for (let i = 0; i < 5000; i++) o = { o } // deeper than JSON.stringify's stack before Node 26
      return r.chance(0.5) ? o : { shallow: true }
    }
    default:
      return JSON.parse(`{"__proto__": ${JSON.stringify(json(r, 2))}, "b": 1}`)
  }
}

interface ErrorCase {
  error: unknown
  /** the chain loops back (serializeError: awaitly overflows the stack) */
  cyclic: boolean
}

function errorValue(r: R, depth: number): ErrorCase {
  const ctors: Array<() => Error> = [
    () => new Error(str(r)),
    () => new TypeError(str(r)),
    () => new RangeError(str(r)),
    () => new AggregateError([new Error('inner'), 'x'], str(r)),
    () => new MyError(str(r)),
    () => new Error(),
  ]
  const chain: Error[] = []
  const n = 1 + r.int(Math.max(1, depth))
  for (let i = 0; i < n; i++) {
    const e = r.pick(ctors)()
    if (r.chance(0.15)) e.name = str(r)
    if (r.chance(0.1)) (e as any).name = r.pick([5, undefined, null])
    if (r.chance(0.1)) delete (e as any).stack
    else if (r.chance(0.05)) e.stack = ''
    chain.push(e)
  }
  let cyclic = false
  for (let i = 0; i < n; i++) {
    const e = chain[i] as any
    const setCause = (c: unknown) => {
      // own enumerable (assignment) or non-enumerable (as `new Error(m, { cause })` makes it)
      if (r.chance(0.5)) e.cause = c
      else Object.defineProperty(e, 'cause', { value: c, enumerable: false, writable: true, configurable: true })
    }
    if (i + 1 < n) setCause(chain[i + 1])
    else if (r.chance(0.1)) {
      setCause(chain[r.int(n)]) // back to itself or an earlier error
      cyclic = true
    } else if (r.chance(0.5)) setCause(thrownValue(r))
    else if (r.chance(0.2)) setCause(undefined)
  }
  return { error: chain[0], cyclic }
}

// ---------------------------------------------------------------------------
// comparison

type Outcome = { threw: false; value: unknown } | { threw: true; error: any }
function attempt(fn: () => unknown): Outcome {
  try {
    return { threw: false, value: fn() }
  } catch (error) {
    return { threw: true, error }
  }
}

/** The snapshot error classes, ours and awaitly's: one copy each, told apart by identity. */
const ERROR_CLASSES = ['SnapshotFormatError', 'SnapshotMismatchError', 'SnapshotDecodeError']
const sameClass = (pa: any, pb: any) =>
  ERROR_CLASSES.some((n) => pa === ours[n].prototype && pb === (theirs as any)[n].prototype)

/**
 * Structural equality: same prototype (our snapshot error classes stand for
 * awaitly's), same own keys in the same order, same enumerability and values
 * (Object.is), cycles followed pairwise. An Error's `stack` is left out when
 * `ignoreStack` (a new Error captures where it was made).
 */
function same(a: unknown, b: unknown, path = '$', seen = new Map<object, object>(), ignoreStack = false): string | null {
  // depth first with a work list, not recursion: values can be deeper than the
  // call stack (from Node 26 on, JSON.stringify round-trips arbitrarily deep
  // plain objects, so serializeThrown keeps them as `value`)
  const work: Array<[unknown, unknown, string]> = [[a, b, path]]
  while (work.length > 0) {
    const [x, y, at] = work.pop()!
    if (Object.is(x, y)) continue
    if (typeof x !== 'object' || x === null || typeof y !== 'object' || y === null) {
      if (typeof x === 'symbol' && typeof y === 'symbol' && x.description === y.description) continue
      return `${at}: ${String(x)} vs ${String(y)}`
    }
    if (seen.get(x) === y) continue
    seen.set(x, y)
    const px = Object.getPrototypeOf(x)
    const py = Object.getPrototypeOf(y)
    if (px !== py && !sameClass(px, py)) return `${at}: prototypes differ`
    const skip = (k: string | symbol) => ignoreStack && x instanceof Error && k === 'stack'
    const kx = Reflect.ownKeys(x).filter((k) => !skip(k))
    const ky = Reflect.ownKeys(y).filter((k) => !skip(k))
    if (kx.length !== ky.length || kx.some((k, i) => k !== ky[i])) {
      return `${at}: keys [${kx.map(String)}] vs [${ky.map(String)}]`
    }
    const children: Array<[unknown, unknown, string]> = []
    for (const k of kx) {
      const dx = Object.getOwnPropertyDescriptor(x, k)!
      const dy = Object.getOwnPropertyDescriptor(y, k)!
      if (dx.enumerable !== dy.enumerable) return `${at}.${String(k)}: enumerability differs`
      children.push([dx.value, dy.value, `${at}.${String(k)}`])
    }
    // first key on top: the first difference found is the first in key order
    for (let i = children.length - 1; i >= 0; i--) work.push(children[i])
  }
  return null
}

/** Both returned equal values, or both threw the same class with the same message. */
function agree(o: Outcome, t: Outcome, label: string, ignoreStack = false) {
  if (t.threw) {
    expect(o.threw, `${label}: awaitly threw ${t.error}, we returned`).toBe(true)
    const oe = (o as any).error
    expect(oe?.constructor?.name, label).toBe(t.error.constructor.name)
    if (oe.code === 'ERR_INVALID_ARG') {
      // documented: our TypeError names the bad argument (awaitly's is V8's from inside)
      expect(t.error).toBeInstanceOf(TypeError)
      expect(oe).toBeInstanceOf(TypeError)
    } else {
      expect(oe.message, label).toBe(t.error.message)
    }
    return
  }
  expect(o.threw, `${label}: we threw ${(o as any).error}`).toBe(false)
  const d = same((o as any).value, t.value, '$', new Map(), ignoreStack)
  expect(d, label).toBeNull()
}

afterEach(() => {
  vi.restoreAllMocks()
})

// ---------------------------------------------------------------------------

describe('awaitly-persistence-native/snapshot exports', () => {
  it('CJS and ESM export every runtime name of awaitly/persistence 1.35 (and only our listed extras), one object each', async () => {
    // exports of ours that awaitly/persistence does not have (none yet)
    const extras: string[] = ['createSnapshotStore']
    const names = Object.keys(theirs135)
    expect(Object.keys(ours).sort()).toEqual([...names, ...extras].sort())
    const esm = await esmOurs()
    expect(Object.keys(esm).filter((k) => k !== 'default').sort()).toEqual(Object.keys(ours).sort())
    for (const k of Object.keys(ours)) expect(esm[k], k).toBe(ours[k])
    for (const k of names) expect(typeof ours[k], k).toBe(typeof theirs135[k])
  })

  it('error classes: same name, own fields in the same order, instanceof Error and their own class', () => {
    const cases: Array<[string, unknown[]]> = [
      ['SnapshotFormatError', ['bad', ['a', 'b']]],
      ['SnapshotFormatError', ['bad']],
      ['SnapshotMismatchError', ['m', 'workflow_id', { snapshotWorkflowId: 'a', expectedWorkflowId: 'b' }]],
      ['SnapshotMismatchError', ['m', 'unknown_steps']],
      ['SnapshotDecodeError', ['d', 'step-1', new Error('x')]],
      ['SnapshotDecodeError', ['d', 'step-1']],
    ]
    for (const [name, args] of cases) {
      const o = new ours[name](...args)
      const t = new theirs135[name](...args)
      expect(same(o, t, name, new Map(), true), name).toBeNull()
      expect(o.name).toBe(name)
      expect(o.message).toBe(t.message)
      expect(String(o)).toBe(String(t))
      expect(o).toBeInstanceOf(Error)
      expect(o).toBeInstanceOf(ours[name])
      expect(o.stack).toMatch(new RegExp(`^${name}: `))
      // class identity is per copy, in awaitly too: its ESM and CJS builds carry one each
      expect(t).not.toBeInstanceOf(ours[name])
      expect(t).not.toBeInstanceOf(require('awaitly/persistence')[name])
    }
  })

  it('durable.run treats our SnapshotFormatError from a store exactly as awaitly\'s own (it matches neither by class)', async () => {
    const outcomes = []
    for (const Cls of [ours.SnapshotFormatError, theirs135.SnapshotFormatError]) {
      const store = {
        save: async () => {},
        load: async () => {
          throw new Cls('Invalid snapshot format: x', ['x'])
        },
        delete: async () => {},
        list: async () => [],
        close: async () => {},
      }
      const r: any = await durable.run({ one: async () => ok(1) }, async ({ step, deps }: any) => step('one', () => deps.one()), {
        id: 'diff-durable',
        store,
      })
      expect(r.ok).toBe(false)
      outcomes.push({ type: r.error.type, message: r.error.message, causeName: r.error.cause.name })
    }
    expect(outcomes[0]).toEqual(outcomes[1])
    expect(outcomes[0]).toEqual({
      type: 'PERSISTENCE_ERROR',
      message: "Failed to load state for workflow 'diff-durable': Invalid snapshot format: x",
      causeName: 'SnapshotFormatError',
    })
  })
})

describe.each(REFERENCES)('serializeThrown / serializeError / deserializeCauseNew agree with awaitly $version', (ref) => {
  beforeAll(() => {
    theirs = ref.helpers
  })

  it(`serializeThrown on ${N} random thrown values`, () => {
    const r = rng(1)
    for (let i = 0; i < N; i++) {
      const v = thrownValue(r)
      agree(attempt(() => ours.serializeThrown(v)), attempt(() => theirs.serializeThrown(v)), `seed 1 #${i}`)
    }
  })

  it(`serializeError on ${N} random Error cause chains (AggregateError, subclasses, non-Error causes, loops)`, () => {
    const r = rng(2)
    let loops = 0
    for (let i = 0; i < N; i++) {
      const { error, cyclic } = errorValue(r, 6)
      const o = attempt(() => ours.serializeError(error))
      const t = attempt(() => theirs.serializeError(error as Error))
      if (!cyclic) {
        agree(o, t, `seed 2 #${i}`)
        continue
      }
      // documented: a chain that loops back overflows awaitly's stack; ours
      // stops at the first error met twice with a `[Circular]` entry
      loops++
      expect(t.threw && t.error).toBeInstanceOf(RangeError)
      expect(o.threw).toBe(false)
      const seen = new Set()
      let e: any = error
      let s: any = (o as any).value
      while (!seen.has(e)) {
        seen.add(e)
        expect(s).toMatchObject({ type: 'error', name: e.name, message: e.message })
        expect(s.stack).toBe(e.stack || undefined)
        e = e.cause
        s = s.cause
      }
      expect(s).toEqual({ type: 'thrown', originalType: e.constructor.name, stringRepresentation: '[Circular]' })
    }
    expect(loops).toBeGreaterThan(0)
  })

  it(`deserializeCauseNew on ${N} random SerializedCauses (awaitly's own output, JSON round trips, mangled ones)`, () => {
    const r = rng(3)
    for (let i = 0; i < N; i++) {
      let input: any
      const { error, cyclic } = errorValue(r, 5)
      const source = cyclic ? thrownValue(r) : r.chance(0.7) ? error : thrownValue(r)
      input = source instanceof Error ? theirs.serializeError(source) : theirs.serializeThrown(source)
      if (r.chance(0.5)) input = JSON.parse(JSON.stringify(input))
      if (r.chance(0.3)) {
        // mangle: a field dropped or replaced somewhere on the chain
        let node = input
        while (node.cause && r.chance(0.5)) node = node.cause
        const field = r.pick(['type', 'name', 'message', 'stack', 'cause', 'value', 'stringRepresentation'])
        if (r.chance(0.5)) delete node[field]
        else node[field] = r.pick([null, 0, 7, '', 'x', 'error', 'thrown', {}, [], json(r, 1)])
      }
      const label = `seed 3 #${i}`
      const o = attempt(() => ours.deserializeCauseNew(input))
      agree(o, attempt(() => theirs.deserializeCauseNew(input)), label, true)
      // the stack comes from the serialized entry when it has one
      let v: any = !o.threw && o.value
      let s = input
      while (v instanceof Error && s && typeof s === 'object') {
        if (s.stack) expect(v.stack, label).toBe(s.stack)
        v = (v as any).cause
        s = s.cause
      }
    }
    expect(attempt(() => ours.deserializeCauseNew(null)).threw).toBe(true)
  })

  it('bad arguments: TypeError with code ERR_INVALID_ARG where awaitly throws V8\'s TypeError', () => {
    for (const v of [null, undefined]) {
      for (const fn of ['serializeError', 'deserializeCauseNew'] as const) {
        const o: any = attempt(() => ours[fn](v))
        const t: any = attempt(() => (theirs as any)[fn](v))
        expect(t.error).toBeInstanceOf(TypeError)
        expect(o.error).toBeInstanceOf(TypeError)
        expect(o.error.code).toBe('ERR_INVALID_ARG')
        expect(o.error.message).toMatch(new RegExp(`^${fn}: `))
      }
    }
  })

  it('documented: cause chains deeper than the call stack work (awaitly: RangeError)', () => {
    const depth = 20_000
    // (stacks set by hand: formatting 40,000 captured ones would take seconds)
    const make = (i: number) => Object.assign(new Error(`e${i}`), { stack: `at ${i}` })
    const root = make(0)
    let e: any = root
    for (let i = 1; i < depth; i++) e = e.cause = make(i)
    expect(attempt(() => theirs.serializeError(root)).error).toBeInstanceOf(RangeError)
    const s = ours.serializeError(root)
    const messages: string[] = []
    for (let c = s; c; c = c.cause) messages.push(c.message)
    expect(messages).toEqual(Array.from({ length: depth }, (_, i) => `e${i}`))
    expect(attempt(() => theirs.deserializeCauseNew(s)).error).toBeInstanceOf(RangeError)
    const back = ours.deserializeCauseNew(s)
    const again: string[] = []
    for (let c = back; c instanceof Error; c = (c as any).cause) again.push(c.message)
    expect(again).toEqual(messages)
  })

  it('documented: a SerializedCause object graph that loops back gives an Error chain that loops back', () => {
    const a: any = { type: 'error', name: 'A', message: 'a' }
    const b: any = { type: 'error', name: 'B', message: 'b', cause: a }
    a.cause = b
    expect(attempt(() => theirs.deserializeCauseNew(a)).threw).toBe(true)
    const e = ours.deserializeCauseNew(a)
    expect(e.name).toBe('A')
    expect(e.cause.name).toBe('B')
    expect(e.cause.cause).toBe(e)
  })
})

// ---------------------------------------------------------------------------
// snapshots

const now = () => new Date(Date.UTC(2026, 0, 1)).toISOString()

function validSnapshot(r: R): any {
  const steps: any = {}
  const n = r.int(5)
  for (let i = 0; i < n; i++) {
    const id = r.chance(0.2) ? r.pick(['__proto__', 'constructor', '\ud800', '']) : `step-${r.int(8)}`
    const step = r.chance(0.6)
      ? { ok: true, value: json(r, 2) }
      : { ok: false, error: json(r, 1), cause: theirs.serializeThrown(thrownValue(r)), ...(r.chance(0.5) ? { meta: { origin: r.pick(['result', 'throw']) } } : {}) }
    put(steps, id, step)
  }
  const s: any = {
    formatVersion: 1,
    steps,
    execution: { status: r.pick(['running', 'completed', 'failed']), lastUpdated: now() },
  }
  if (r.chance(0.3)) s.workflowName = str(r)
  if (r.chance(0.3)) s.execution.completedAt = now()
  if (r.chance(0.3)) s.execution.currentStepId = `step-${r.int(8)}`
  if (r.chance(0.5)) {
    s.metadata = { workflowId: str(r) }
    if (r.chance(0.5)) put(s.metadata, '__proto__', json(r, 1))
    if (r.chance(0.5)) s.metadata.input = json(r, 2)
  }
  if (r.chance(0.5)) {
    s.warnings = Array.from({ length: r.int(3) }, () => ({
      type: 'lossy_value',
      stepId: r.chance(0.7) ? `step-${r.int(8)}` : '__proto__',
      path: '$',
      reason: r.pick(['non-json', 'circular', 'encode-failed']),
    }))
  }
  return r.chance(0.2) ? JSON.parse(JSON.stringify(s)) : s
}

/** Wrong values for a field, in turn. */
const WRONG: Array<() => unknown> = [
  () => undefined,
  () => null,
  () => 0,
  () => 1,
  () => 2,
  () => '1',
  () => '',
  () => true,
  () => [],
  () => ({}),
  () => Object.create(null),
  () => 'running ',
  () => 12345,
  () => () => {},
  () => 1n,
]

/** A snapshot with one field (or one step's field) wrong, removed, or inherited instead of own. */
function invalidSnapshot(r: R): any {
  const s = validSnapshot(r)
  const target = r.pick(['root', 'formatVersion', 'steps', 'step', 'execution', 'status', 'lastUpdated', 'proto', 'symbolVersion'])
  const wrong = () => r.pick(WRONG)()
  const setOrDelete = (o: any, k: string) => {
    if (r.chance(0.25)) delete o[k]
    else o[k] = wrong()
  }
  switch (target) {
    case 'root':
      return r.chance(0.5) ? wrong() : [s]
    case 'formatVersion':
    case 'steps':
    case 'execution':
      setOrDelete(s, target)
      break
    case 'step': {
      const id = r.pick(['a', '__proto__', '\udc00'])
      const fields = { ok: r.chance(0.5) ? false : wrong(), ...(r.chance(0.5) ? { error: 'E' } : {}), ...(r.chance(0.5) ? { cause: {} } : {}) }
      // a step of the wrong type, or its fields own, or inherited from its prototype
      const step = r.chance(0.3) ? wrong() : r.chance(0.3) ? Object.assign(Object.create(fields), { ok: false }) : fields
      if (typeof s.steps === 'object' && s.steps !== null) put(s.steps, id, step)
      break
    }
    case 'status':
    case 'lastUpdated':
      if (r.chance(0.2)) s.execution = Object.create(s.execution) // inherited fields
      setOrDelete(s.execution, target)
      break
    case 'proto':
      // required fields inherited, not own: awaitly's `in` sees them
      return Object.create(s)
    case 'symbolVersion':
      s.formatVersion = r.chance(0.5) ? Symbol('v') : Object.create(null)
  }
  return s
}

/** A formatVersion other than 1 that a template literal cannot print (a Symbol, a null-prototype object). */
function unprintableVersion(snap: any): boolean {
  if (typeof snap !== 'object' || snap === null || !('formatVersion' in snap) || snap.formatVersion === 1) return false
  try {
    void `${snap.formatVersion}`
    return false
  } catch {
    return true
  }
}

/** Values of every kind for a member or a step: null, primitives, functions, arrays, odd objects. */
const ODD: Array<() => unknown> = [
  () => null,
  () => undefined,
  () => 0,
  () => 1,
  () => NaN,
  () => '',
  () => '1',
  () => 'running',
  () => true,
  () => false,
  () => 1n,
  () => Symbol('odd'),
  () => () => {},
  () => [],
  () => [{ ok: true, value: 1 }],
  () => ({}),
  () => Object.create(null),
  () => new Date(0),
  () => new Map([['a', { ok: true }]]),
  () => Object(1),
  () => new Custom(),
]

/** Keys that look like numbers (array indices or not): JavaScript orders the index-like ones first. */
const NUMERIC_KEYS = ['0', '1', '01', '-1', '1.5', '1e3', '4294967294', '4294967295', '9007199254740993', 'NaN']

/** An odd step: a non-object, an array, `ok` of the wrong type or inherited, error/cause present but undefined. */
function oddStep(r: R): unknown {
  switch (r.int(7)) {
    case 0:
      return r.pick(ODD)()
    case 1:
      return [r.chance(0.5)]
    case 2:
      return { ok: r.pick(ODD)() }
    case 3:
      return Object.create({ ok: r.chance(0.5), error: 'E', cause: {} })
    case 4:
      return { ok: false, error: undefined, cause: undefined }
    case 5:
      return JSON.parse('{"__proto__": {"ok": true}, "value": 1}')
    default:
      return Object.assign(Object.create(null), { ok: false, error: 'E' })
  }
}

/**
 * A snapshot-like value with one to three odd parts: null and non-object
 * members (`execution: null` among them), odd steps, odd `steps` containers
 * (arrays, null-prototype objects, numeric-like keys), required fields
 * inherited from a prototype (`__proto__` assignment, Object.create) or held
 * by an own `__proto__` key (JSON.parse), numeric-like keys on the snapshot,
 * and arrays, functions and class instances carrying a snapshot's fields.
 */
function oddSnapshot(r: R): any {
  let s: any = validSnapshot(r)
  const n = 1 + r.int(3)
  for (let i = 0; i < n; i++) {
    switch (r.int(11)) {
      case 0:
        s[r.pick(['formatVersion', 'steps', 'execution', 'metadata', 'warnings', 'workflowName'])] = r.pick(ODD)()
        break
      case 1:
        s.execution = r.chance(0.5) ? null : r.pick(ODD)()
        break
      case 2:
        if (typeof s.execution === 'object' && s.execution !== null) s.execution[r.pick(['status', 'lastUpdated'])] = r.pick(ODD)()
        break
      case 3:
        if (typeof s.steps === 'object' && s.steps !== null) put(s.steps, r.pick([...NUMERIC_KEYS, '__proto__', 'odd']), oddStep(r))
        break
      case 4: {
        // the steps container itself: an array of steps, a null-prototype object, numeric-like ids
        const steps: any = r.pick([() => [], () => Object.create(null), () => ({})])()
        if (Array.isArray(steps) && r.chance(0.5)) steps.push({ ok: true, value: 'pushed' })
        for (let k = r.int(4); k > 0; k--) put(steps, r.pick(NUMERIC_KEYS), r.chance(0.7) ? { ok: true, value: k } : oddStep(r))
        s.steps = steps
        break
      }
      case 5: {
        // required fields inherited, some or all: through `__proto__` assignment or Object.create
        const field = r.pick(['formatVersion', 'steps', 'execution'])
        const proto: any = { [field]: s[field] }
        const own = { ...s }
        delete own[field]
        s = r.chance(0.5) ? Object.assign(Object.create(proto), own) : Object.assign(own, { __proto__: proto })
        break
      }
      case 6:
        // an own `__proto__` key holding the fields (JSON.parse), with or without them also own
        s = JSON.parse(`{"__proto__": ${JSON.stringify({ formatVersion: 1, steps: {}, execution: { status: 'running', lastUpdated: now() } })}${r.chance(0.5) ? `, "formatVersion": 1, "steps": {}` : ''}}`)
        break
      case 7:
        if (typeof s.execution === 'object' && s.execution !== null) s.execution = Object.create(s.execution)
        break
      case 8:
        if (typeof s === 'object' && s !== null) for (const k of NUMERIC_KEYS.slice(0, 1 + r.int(4))) put(s, k, r.pick(ODD)())
        break
      case 9: {
        // another kind of object carrying the fields
        const carrier: any = r.pick([() => [], () => function snap() {}, () => new Custom(), () => new Date(0)])()
        for (const k of Object.keys(s)) put(carrier, k, s[k])
        s = carrier
        break
      }
      default:
        s = r.pick(ODD)()
    }
    if (typeof s !== 'object' || s === null) break
  }
  return s
}

describe.each(REFERENCES)('validateSnapshot / assertValidSnapshot / looksLikeWorkflowSnapshot agree with awaitly $version', (ref) => {
  beforeAll(() => {
    theirs = ref.helpers
  })

  /** All three on one input; counts the documented unprintable-formatVersion cases. */
  function compare(snap: any, label: string, tally: { unprintable: number; nullExecution: number; looksLike: number }) {
    const ov = attempt(() => ours.validateSnapshot(snap))
    const oa = attempt(() => ours.assertValidSnapshot(snap))
    if (unprintableVersion(snap)) {
      // documented: awaitly throws V8's TypeError building its message; we report it
      tally.unprintable++
      expect(attempt(() => theirs.validateSnapshot(snap)).threw).toBe(true)
      const v: any = (ov as any).value
      expect(v.valid).toBe(false)
      expect(v.errors[0]).toMatch(/^Invalid formatVersion: expected 1, got (Symbol\(.*\)|\[object Object\])$/)
      // the same snapshot with a printable version: own fields copied, inherited ones kept inherited
      const copy = { ...snap, formatVersion: 2 }
      if (!Array.isArray(snap) && typeof snap !== 'function') Object.setPrototypeOf(copy, Object.getPrototypeOf(snap))
      const stand = theirs.validateSnapshot(copy) as any
      expect(v.errors.slice(1)).toEqual(stand.errors.slice(1))
      expect((oa as any).error).toBeInstanceOf(ours.SnapshotFormatError)
      expect((oa as any).error.errors).toEqual(v.errors)
    } else {
      const tv = attempt(() => theirs.validateSnapshot(snap))
      agree(ov, tv, label)
      if (!ov.threw && (ov.value as any).valid) expect((ov.value as any).snapshot).toBe(snap)
      const ta = attempt(() => theirs.assertValidSnapshot(snap))
      if (ta.threw) {
        expect(oa.threw, label).toBe(true)
        const oe = (oa as any).error
        expect(oe).toBeInstanceOf(ours.SnapshotFormatError)
        expect(same(oe, ta.error, label, new Map(), true)).toBeNull()
        expect(oe.message).toBe(ta.error.message)
      } else {
        agree(oa, ta, label)
      }
    }
    const ol = ours.looksLikeWorkflowSnapshot(snap)
    expect(ol, label).toBe(theirs.looksLikeWorkflowSnapshot(snap))
    if (ol) tally.looksLike++
    if (snap !== null && typeof snap === 'object' && 'execution' in snap && snap.execution === null) tally.nullExecution++
  }

  it(`on ${N} valid and ${N} invalid snapshots (each field wrong in turn)`, () => {
    const r = rng(4)
    const tally = { unprintable: 0, nullExecution: 0, looksLike: 0 }
    for (let i = 0; i < 2 * N; i++) compare(i % 2 === 0 ? validSnapshot(r) : invalidSnapshot(r), `seed 4 #${i}`, tally)
    expect(tally.unprintable).toBeGreaterThan(0)
    expect(tally.nullExecution).toBeGreaterThan(0)
  })

  it(`on ${4 * N} odd shapes (null and non-object members, odd steps, inherited and __proto__ keys, numeric-like keys)`, () => {
    const r = rng(8)
    const tally = { unprintable: 0, nullExecution: 0, looksLike: 0 }
    for (let i = 0; i < 4 * N; i++) compare(oddSnapshot(r), `seed 8 #${i}`, tally)
    // the generator reaches each kind of case, snapshot-like or not
    expect(tally.nullExecution).toBeGreaterThan(0)
    expect(tally.unprintable).toBeGreaterThan(0)
    expect(tally.looksLike).toBeGreaterThan(N / 10)
    expect(tally.looksLike).toBeLessThan(4 * N)
  })

  it('looksLikeWorkflowSnapshot on the hand-picked cases, as awaitly answers them', () => {
    const execution = { status: 'running', lastUpdated: now() }
    const cases: unknown[] = [
      { formatVersion: 1, steps: {}, execution: null },
      { formatVersion: 1, steps: null, execution },
      { formatVersion: 1, steps: [], execution: [] },
      { formatVersion: 1, steps: () => {}, execution },
      { formatVersion: '1', steps: {}, execution },
      Object.create({ formatVersion: 1, steps: {}, execution }),
      JSON.parse('{"__proto__": {"formatVersion": 1}, "steps": {}, "execution": {}}'),
      Object.assign([], { formatVersion: 1, steps: {}, execution }),
      Object.assign(() => {}, { formatVersion: 1, steps: {}, execution }),
      { 0: 1, formatVersion: 1, steps: { 1: { ok: 'yes' } }, execution: new Date(0) },
    ]
    for (const [i, c] of cases.entries()) expect(ours.looksLikeWorkflowSnapshot(c), `case ${i}`).toBe(theirs.looksLikeWorkflowSnapshot(c))
    expect(ours.looksLikeWorkflowSnapshot(cases[0])).toBe(true) // awaitly: execution only has to be `typeof 'object'`
  })
})

describe.each(REFERENCES)('mergeSnapshots agrees with awaitly $version', (ref) => {
  beforeAll(() => {
    theirs = ref.helpers
  })

  it(`on ${N} random pairs (shared step ids, __proto__ ids and keys, warnings, metadata)`, () => {
    const r = rng(5)
    for (let i = 0; i < N; i++) {
      const base = validSnapshot(r)
      const delta = validSnapshot(r)
      if (r.chance(0.3) && Object.keys(base.steps).length > 0) {
        put(delta.steps, r.pick(Object.keys(base.steps)), { ok: true, value: 'replaced' })
      }
      const label = `seed 5 #${i}`
      const o = attempt(() => ours.mergeSnapshots(base, delta))
      agree(o, attempt(() => theirs.mergeSnapshots(base, delta)), label)
      if (!o.threw) expect(Object.getPrototypeOf((o.value as any).steps)).toBeNull()
    }
  })

  it(`on ${N} malformed pairs: the same result, or a TypeError (ours with code ERR_INVALID_ARG)`, () => {
    const r = rng(6)
    let coded = 0
    for (let i = 0; i < N; i++) {
      const base = validSnapshot(r)
      const delta = validSnapshot(r)
      const victim = r.chance(0.5) ? base : delta
      const field = r.pick(['steps', 'metadata', 'warnings', 'execution', 'whole', 'warning'])
      let args = [base, delta]
      if (field === 'whole') args = victim === base ? [r.pick(WRONG)(), delta] : [base, r.pick(WRONG)()]
      else if (field === 'warning') victim.warnings = [r.pick(WRONG)()]
      else if (r.chance(0.2)) delete victim[field]
      else victim[field] = r.pick([...WRONG, () => 'str', () => [1, 2]])()
      const o: any = attempt(() => ours.mergeSnapshots(...args))
      agree(o, attempt(() => theirs.mergeSnapshots(args[0], args[1])), `seed 6 #${i}`)
      if (o.threw && o.error.code === 'ERR_INVALID_ARG') {
        coded++
        expect(o.error.message).toMatch(/^mergeSnapshots: (base|delta)/)
      }
    }
    expect(coded).toBeGreaterThan(0)
  })

  it(`on ${2 * N} pairs with an odd side (the odd-shape generator on either side)`, () => {
    const r = rng(9)
    for (let i = 0; i < 2 * N; i++) {
      const args = i % 2 === 0 ? [oddSnapshot(r), validSnapshot(r)] : [validSnapshot(r), oddSnapshot(r)]
      agree(attempt(() => ours.mergeSnapshots(args[0], args[1])), attempt(() => theirs.mergeSnapshots(args[0], args[1])), `seed 9 #${i}`)
    }
  })
})

describe.each(REFERENCES)('createMemoryCache agrees with awaitly $version on unbounded caches', (ref) => {
  beforeAll(() => {
    theirs = ref.helpers
  })

  it(`${Math.ceil(N / 10)} random get/set/has/delete/clear sequences under a controlled clock`, () => {
    const r = rng(7)
    let t = 1_000_000
    vi.spyOn(Date, 'now').mockImplementation(() => t)
    let expiredDeletes = 0
    for (let run = 0; run < Math.ceil(N / 10); run++) {
      const ttl = r.pick([undefined, 0, 5, 50])
      const options = r.chance(0.2) ? undefined : { maxSize: r.pick([undefined, 0]), ttl }
      const o = ours.createMemoryCache(options)
      const a = theirs.createMemoryCache(options)
      // when each key was set and with which effective ttl (to tell an expired delete)
      const model = new Map<string, { at: number; ttl: number | undefined }>()
      const expired = (k: string) => {
        const m = model.get(k)
        return m !== undefined && !!m.ttl && t - m.at > m.ttl
      }
      for (let step = 0; step < 60; step++) {
        const key = `k${r.int(6)}`
        const label = `seed 7 run ${run} step ${step}`
        switch (r.int(7)) {
          case 0:
          case 1: {
            const value = { ok: true as const, value: r.int(100) }
            const entryTtl = r.chance(0.3) ? { ttl: r.pick([0, 3, 20]) } : undefined
            o.set(key, value, entryTtl)
            a.set(key, value, entryTtl)
            model.set(key, { at: t, ttl: entryTtl?.ttl ?? ttl })
            break
          }
          case 2:
            expect(o.get(key), label).toBe(a.get(key))
            break
          case 3:
            expect(o.has(key), label).toBe(a.has(key))
            break
          case 4: {
            const gone = expired(key)
            const od = o.delete(key)
            const ad = a.delete(key)
            if (od !== ad) {
              // documented: deleting an expired entry is `false` here (nothing live removed)
              expect(ad, label).toBe(true)
              expect(od, label).toBe(false)
              expect(gone, label).toBe(true)
              expiredDeletes++
            }
            model.delete(key)
            break
          }
          case 5:
            t += r.pick([1, 4, 6, 30, 60])
            break
          default:
            if (r.chance(0.2)) {
              o.clear()
              a.clear()
              model.clear()
            }
        }
      }
    }
    expect(expiredDeletes).toBeGreaterThan(0)
  })

  it('documented: invalid options are a TypeError (ERR_INVALID_ARG) here, accepted by awaitly', () => {
    for (const options of [{ ttl: -1 }, { maxSize: 1.5 }, { ttl: '60' }]) {
      expect(() => theirs.createMemoryCache(options as any)).not.toThrow()
      const e: any = attempt(() => ours.createMemoryCache(options)).threw && (attempt(() => ours.createMemoryCache(options)) as any).error
      expect(e).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG')
    }
  })
})
