// The awaitly end-to-end suite (awaitly-suite.ts) with every Redis store on
// the shared server, and the same engine across processes
// (fixtures/e2e-awaitly-child.cjs): a second process, with a new cache loaded
// from storage or the saved ResumeState, runs none of the steps the first one
// persisted. Needs Redis on 127.0.0.1:6379 (the test fails if it is not there).
import { afterAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { awaitlyDir } from '../helpers/awaitly'
import { defineAwaitlyE2E } from './awaitly-suite'

const require = createRequire(import.meta.url)
const { createRedisStore, escapeGlob } = require('../../index.js')

defineAwaitlyE2E({ name: 'createRedisStore', open: () => createRedisStore({ url: 'redis://127.0.0.1:6379' }) })

const child = join(__dirname, '..', 'fixtures', 'e2e-awaitly-child.cjs')
const unique = `e2e-awaitly-xp:${process.pid}-${Date.now().toString(36)}:`
const dir = mkdtempSync(join(tmpdir(), 'awaitly-e2e-xp-'))
afterAll(async () => {
  const store = createRedisStore({ url: 'redis://127.0.0.1:6379' })
  for (const k of await store.keys(`${escapeGlob(unique)}*`)) await store.delete(k)
  expect(await store.keys(`${escapeGlob(unique)}*`)).toEqual([])
  await store.close()
  rmSync(dir, { recursive: true, force: true })
})

const runChild = (args: string[]) =>
  new Promise<any>((resolve, reject) => {
    execFile(process.execPath, [child, ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`child ${args.join(' ')} failed: ${stderr || error.message}`))
      resolve(JSON.parse(stdout.trim().split('\n').pop()!))
    })
  })

const kinds = [
  { kind: 'file-cache', where: () => join(dir, 'file-cache') },
  { kind: 'kv-file', where: () => join(dir, 'kv-file') },
  { kind: 'kv-redis', where: () => `${unique}kv:` },
  { kind: 'state-file', where: () => join(dir, 'state') },
  { kind: 'snapshot-redis', where: () => `${unique}snap:` },
]

describe.each(kinds)('awaitly engine across processes: $kind', ({ kind, where }) => {
  it('a second process runs none of the steps the first one persisted, with the same result', async () => {
    const location = where()
    const first = await runChild([kind, location, 'write'])
    expect(first.ok).toBe(true)
    expect(first.calls).toEqual({ user: 1, charge: 1, ship: 1 })
    // the child loaded the awaitly this run tests (1.35, or the one CI selected)
    expect(first.awaitly.startsWith(`${awaitlyDir}/`)).toBe(true)
    const second = await runChild([kind, location, 'read'])
    expect(second.calls).toEqual({ user: 0, charge: 0, ship: 0 })
    expect(second.value).toEqual(first.value)
  })
})
