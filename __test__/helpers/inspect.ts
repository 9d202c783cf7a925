// Shared by the inspector's tests: run the CLI, and seed a store with runs
// written by awaitly's own durable.run in child processes
// (fixtures/inspect-child.cjs).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import path from 'node:path'
import { expect } from 'vitest'

const require = createRequire(import.meta.url)
const { createStatePersistence } = require('../../index.js')

const BIN = path.join(__dirname, '..', '..', 'cli', 'bin.js')
const CHILD = path.join(__dirname, '..', 'fixtures', 'inspect-child.cjs')
export const PREFIX = 'awaitly:snapshot:'
export const XSS = 'order-<img src=x onerror=alert(1)>'

export interface Cli {
  code: number | null
  out: string
  err: string
}

/** Run the inspector; `input` is its stdin. */
export function cli(args: string[], input = ''): Cli {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', timeout: 30_000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

export const jsonLines = (s: string) =>
  s
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))

export function child(args: string[]): { proc: ChildProcess; saw: (line: string) => Promise<void>; done: Promise<number | null> } {
  const proc = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (err += d))
  const done = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)))
  return {
    proc,
    done,
    saw: (line) =>
      new Promise((resolve, reject) => {
        const t = setInterval(() => {
          if (out.split('\n').includes(line)) {
            clearInterval(t)
            resolve()
          }
        }, 20)
        void done.then((c) => {
          clearInterval(t)
          if (!out.split('\n').includes(line)) reject(new Error(`child exited ${c} before ${line}: ${err}`))
        })
      }),
  }
}

/**
 * Fill a store with the six runs above; returns the live worker (kill it at
 * the end). `kind`/`target` as the child takes them.
 */
export async function seedRuns(kind: string, target: string, kv: any): Promise<ChildProcess> {
  const run = async (args: string[]) => {
    const c = child(args)
    expect(await c.done).toBe(0)
  }
  await run(['completed', kind, target, PREFIX, 'order-done'])
  await run(['failed', kind, target, PREFIX, XSS])
  const killed = child(['hang', kind, target, PREFIX, 'order-killed', '1000'])
  await killed.saw('in-step-3')
  killed.proc.kill('SIGKILL')
  await killed.done
  const killedAt = Date.now()
  const held = child(['hang', kind, target, PREFIX, 'order-held', '60000'])
  await held.saw('in-step-3')
  await kv.set(`${PREFIX}broken`, '{"updatedAt":"2026-01-01T00:00:00.000Z","snapshot":{"formatVersion":7}}')
  await createStatePersistence(kv).save('legacy-1', { steps: new Map([['fetch', { result: { ok: true, value: 1 } }]]) })
  // the killed worker's 1 s lease expires
  await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 1300 - Date.now())))
  return held.proc
}

