// Worker threads terminated with hundreds of native calls in flight must
// never take the process down (issue 9): each kind of store runs in a child
// process (a crash there is an exit status here, not a dead test runner).
// CI runs 10 rounds of each; `npm run stress` (AWAITLY_STRESS=1) runs 50.
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import path from 'node:path'

const script = path.join(__dirname, 'fixtures', 'worker-teardown.cjs')
const ROUNDS = process.env.AWAITLY_STRESS === '1' ? 50 : 10

describe('worker.terminate() with calls in flight', () => {
  for (const kind of ['memory', 'file-cache', 'file-store', 'redis', 'kv-cache']) {
    it(`${kind}: ${ROUNDS} rounds of 4 workers terminated mid-call; the process stays up and its own store works`, () => {
      const r = spawnSync(process.execPath, [script, kind, String(ROUNDS)], { encoding: 'utf8', timeout: 240_000 })
      expect({ status: r.status, signal: r.signal, stderr: r.stderr.slice(-2000) }).toEqual({ status: 0, signal: null, stderr: '' })
      expect(r.stdout.trim()).toBe(`ok ${ROUNDS}`)
    }, 250_000)
  }
})
