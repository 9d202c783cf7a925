import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
// @ts-expect-error plain ESM fixture without types
import { createSpecFileCache, specFileName, specFs } from '../fixtures/spec-file-cache.mjs'

const require = createRequire(import.meta.url)
const { createFileCache, ok, err } = require('../../index.js')

let dir: string
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'awaitly-interop-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const withCause = new RangeError('out of range')
const results: Record<string, any> = {
  plain: ok({ id: 'order-1', total: 12.5, items: [1, 2, 3], nested: { deep: [{ a: null }] } }),
  'unicode_é': ok('héllo 😀 \u2028 "quoted" \\ back'),
  lone_surrogate: ok('bad \ud800 half'),
  err_value: err('NOT_FOUND', { cause: { status: 404 } }),
  'err-error': err({ code: 'E_FETCH' }, { cause: withCause }),
  err_nocause: err('PLAIN'),
  big: ok('z'.repeat(200_000)),
}

function expectSame(a: any, b: any) {
  expect(a.ok).toBe(b.ok)
  if (a.ok) return expect(a.value).toEqual(b.value)
  expect(a.error).toEqual(b.error)
  if (b.cause instanceof Error) {
    expect(a.cause).toBeInstanceOf(Error)
    expect([a.cause.name, a.cause.message, a.cause.stack]).toEqual([b.cause.name, b.cause.message, b.cause.stack])
  } else expect(a.cause).toEqual(b.cause)
}

describe('file cache interop with the plain-JS spec writer', () => {
  for (const mode of ['native', 'fs'] as const) {
    const ours = () => createFileCache({ directory: dir, ...(mode === 'fs' ? { fs: specFs } : {}) })

    it(`reads files the spec writer wrote (${mode} I/O)`, async () => {
      const spec = createSpecFileCache({ directory: dir })
      await spec.init()
      for (const [k, r] of Object.entries(results)) await spec.setAsync(k, r)
      const cache = ours()
      for (const [k, r] of Object.entries(results)) {
        // simple keys share the spec's file name ('unicode_é' is not simple: see below)
        if (/^[A-Za-z0-9_-]+$/.test(k)) expectSame(await cache.getAsync(k), r)
        else expect(await cache.getAsync(k)).toBeUndefined() // lossy name unproven: not used
      }
    })

    it(`writes files the spec reader reads, byte for byte the spec's (${mode} I/O)`, async () => {
      const cache = ours()
      await cache.init()
      const specDir = mkdtempSync(path.join(os.tmpdir(), 'awaitly-interop-spec-'))
      try {
        const spec = createSpecFileCache({ directory: specDir })
        await spec.init()
        for (const [k, r] of Object.entries(results)) {
          await cache.setAsync(k, r)
          await spec.setAsync(k, r)
        }
        const reader = createSpecFileCache({ directory: dir })
        for (const [k, r] of Object.entries(results)) {
          if (!/^[A-Za-z0-9_-]+$/.test(k)) continue
          expect(readFileSync(path.join(dir, `${k}.json`), 'utf8')).toBe(
            readFileSync(path.join(specDir, specFileName(k)), 'utf8'),
          )
          expectSame(await reader.getAsync(k), r)
        }
      } finally {
        rmSync(specDir, { recursive: true, force: true })
      }
    })
  }

  it('spec clearAsync and ours agree on simple-key files; ours keeps foreign files', async () => {
    const cache = createFileCache({ directory: dir })
    await cache.init()
    await cache.setAsync('a', ok(1))
    await cache.setAsync('b:c', ok(2))
    const spec = createSpecFileCache({ directory: dir })
    expect((await spec.getAsync('a')).value).toBe(1)
    await spec.clearAsync() // the spec removes every *.json, ours included
    expect(readdirSync(dir).filter((n) => !n.startsWith('.'))).toEqual([])
  })
})
