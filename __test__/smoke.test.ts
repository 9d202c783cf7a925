import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import * as esm from '../index.mjs'

const require = createRequire(import.meta.url)
const cjs = require('../index.js')
const native = require('../binding.js')

describe('package entry points', () => {
  it('ESM named exports are exactly the CommonJS exports', () => {
    const esmNames = Object.keys(esm).filter((k) => k !== 'default').sort()
    expect(esmNames).toEqual(Object.keys(cjs).sort())
    for (const name of esmNames) expect((esm as any)[name], name).toBe(cjs[name])
  })

  it('escapes and matches globs natively', () => {
    expect(cjs.escapeGlob('a*b?[c]\\')).toBe('a\\*b\\?\\[c\\]\\\\')
    expect(cjs.globMatch(cjs.escapeGlob('wf:*') + '*', 'wf:*x')).toBe(true)
    expect(cjs.globMatch(cjs.escapeGlob('wf:*') + '*', 'wf:x')).toBe(false)
  })

  it('a Rust panic becomes a JS error with a code, and the process lives', () => {
    let caught: any
    try {
      native.__panicForTest()
    } catch (e) {
      caught = e
    }
    expect(caught).toBeInstanceOf(Error)
    expect(caught.code).toBe('ERR_INTERNAL')
    expect(caught.message).toMatch(/deliberate test panic/)
    // still alive and working
    expect(cjs.globMatch('a*', 'abc')).toBe(true)
  })
})
