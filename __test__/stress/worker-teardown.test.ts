// Worker threads terminated with hundreds of native calls in flight must
// never take the process down (issue 9): each kind of store runs in a child
// process (a crash there is an exit status here, not a dead test runner).
// CI runs 10 rounds of each; `npm run stress` (AWAITLY_STRESS=1) runs 50.
import { describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { dropSchema } from '../helpers/postgres'

const script = path.join(__dirname, '..', 'fixtures', 'worker-teardown.cjs')
const ROUNDS = process.env.AWAITLY_STRESS === '1' ? 50 : 10

function run(kind: string): Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string; pid?: number }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, kind, String(ROUNDS)], { stdio: ['ignore', 'pipe', 'pipe'] })
    const pid = child.pid
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000)
    child.on('exit', (status, signal) => {
      clearTimeout(timer)
      resolve({ status, signal, stdout, stderr, pid })
    })
  })
}

describe('worker.terminate() with calls in flight', () => {
  for (const kind of ['memory', 'file-cache', 'file-store', 'redis', 'kv-cache', 'postgres']) {
    it(`${kind}: ${ROUNDS} rounds of 4 workers terminated mid-call; the process stays up and its own store works`, async () => {
      // async, so that the test runner's own messages flow while the child runs
      const r = await run(kind)
      if (kind === 'postgres') await dropSchema(`teardown_${r.pid}`)
      expect({ status: r.status, signal: r.signal, stderr: r.stderr.slice(-2000) }).toEqual({ status: 0, signal: null, stderr: '' })
      expect(r.stdout.trim()).toBe(`ok ${ROUNDS}`)
    }, 250_000)
  }
})
