import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esm from '../index.mjs'

const require = createRequire(import.meta.url)
const cjs = require('../index.js')
const native = require('../binding.js')
const root = join(dirname(fileURLToPath(import.meta.url)), '..')

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
      native.__internal.panic()
    } catch (e) {
      caught = e
    }
    expect(caught).toBeInstanceOf(Error)
    expect(caught.code).toBe('ERR_INTERNAL')
    expect(caught.message).toMatch(/deliberate test panic/)
    // what and where stay in the error, since nothing is printed
    expect(caught.message).toMatch(/^internal error: panic: deliberate test panic \(at src\/boundary\/test_hooks\.rs:\d+:\d+\)$/)
    // still alive and working
    expect(cjs.globMatch('a*', 'abc')).toBe(true)
  })

  it('a panic caught at the boundary prints nothing (even under RUST_BACKTRACE); AWAITLY_NATIVE_PANIC_REPORT=1 prints it', () => {
    const script = `
      const native = require('./binding.js')
      let code
      try { native.__internal.panic() } catch (e) { code = e.code }
      console.log(code)`
    const run = (env: Record<string, string>) =>
      spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8', env: { ...process.env, RUST_BACKTRACE: '1', ...env } })
    const quiet = run({ AWAITLY_NATIVE_PANIC_REPORT: '' })
    expect(quiet.status, quiet.stderr).toBe(0)
    expect(quiet.stdout.trim()).toBe('ERR_INTERNAL')
    expect(quiet.stderr).toBe('')
    const loud = run({ AWAITLY_NATIVE_PANIC_REPORT: '1' })
    expect(loud.status, loud.stderr).toBe(0)
    expect(loud.stdout.trim()).toBe('ERR_INTERNAL')
    expect(loud.stderr).toMatch(/panicked at src\/boundary\/test_hooks\.rs:\d+:\d+:\ndeliberate test panic/)
  })
})
