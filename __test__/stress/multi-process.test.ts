// Several processes writing overlapping keys into ONE directory (issue 9):
// every key ends with a whole value that some process wrote last for it, no
// two keys share a file, and a SIGKILL of one writer changes nothing of that.
// CI runs a few rounds of each; `npm run stress` (AWAITLY_STRESS=1) runs 20.
import { describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'

const require = createRequire(import.meta.url)
const { createFileStore, createFileCache } = require('../../index.js')
const writerScript = path.join(__dirname, '..', 'fixtures', 'mp-writer.cjs')
const STRESS = process.env.AWAITLY_STRESS === '1'
const RUNS = STRESS ? 20 : 1

interface Outcome {
  writer: number
  killed: boolean
  last: Record<string, string> // key -> tag of the last completed write
  all: Set<string> // every tag it may have written (for a killed writer)
}

function runWriter(
  kind: string,
  dir: string,
  writer: number,
  from: number,
  to: number,
  rounds: number,
  durable: boolean,
  killAfterMs?: number,
): Promise<Outcome> {
  const args = [writerScript, kind, dir, String(writer), String(from), String(to), String(rounds), durable ? 'durable' : 'fast', '20000', '64']
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let timer: NodeJS.Timeout | undefined
    child.stdout.on('data', (d) => {
      out += d
      if (killAfterMs !== undefined && !timer && out.includes('ready')) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    })
    child.stderr.on('data', (d) => (err += d))
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer)
      const all = new Set<string>()
      for (let r = 0; r < rounds; r++) for (let k = from; k < to; k++) all.add(`${writer}:k${k}:${r}:`)
      if (signal === 'SIGKILL') return resolve({ writer, killed: true, last: {}, all })
      if (code !== 0) return reject(new Error(`writer ${writer} exited ${code}: ${err}`))
      const line = out.trim().split('\n').pop() ?? '{}'
      resolve({ writer, killed: false, last: JSON.parse(line), all })
    })
  })
}

/** Keys by writer i: k(i*500) .. k(i*500+999): each key is written by two writers. */
async function round(kind: 'store' | 'cache', procs: number, durable: boolean, kill: boolean) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `mp-${kind}-`))
  try {
    const rounds = 3
    const outcomes = await Promise.all(
      Array.from({ length: procs }, (_, i) => runWriter(kind, dir, i, i * 500, i * 500 + 1000, rounds, durable, kill && i === 0 ? 150 : undefined)),
    )
    // no two names on one file; after a normal exit no temporary is left
    const inodes = new Map<number, string>()
    for (const name of readdirSync(dir)) {
      if (!kill) expect(name.startsWith('.awaitly-tmp.'), `${name} left behind`).toBe(false)
      const st = statSync(path.join(dir, name))
      expect(st.nlink, `${name} has ${st.nlink} links`).toBe(1)
      expect(inodes.has(st.ino), `${name} shares its inode with ${inodes.get(st.ino)}`).toBe(false)
      inodes.set(st.ino, name)
    }
    // every key holds a value one of its writers wrote last (or any of a killed writer's)
    const read =
      kind === 'store'
        ? (() => {
            const s = createFileStore({ directory: dir })
            return (k: string) => s.get(k)
          })()
        : (() => {
            const c = createFileCache({ directory: dir })
            return async (k: string) => {
              const r = await c.getAsync(k)
              return r === undefined ? null : r.value
            }
          })()
    let checked = 0
    for (let k = 0; k < (procs - 1) * 500 + 1000; k++) {
      const key = `k${k}`
      const writers = outcomes.filter((o) => o.all.has(`${o.writer}:${key}:0:`))
      const allowed = new Set<string>()
      for (const o of writers) {
        if (o.killed) for (const t of o.all) if (t.includes(`:${key}:`)) allowed.add(t)
        if (o.last[key]) allowed.add(o.last[key])
      }
      const value: string | null = await read(key)
      const killedOnly = writers.every((o) => o.killed)
      if (value === null) {
        expect(killedOnly, `${key} missing`).toBe(true)
        continue
      }
      const tag = value.slice(0, value.indexOf('|'))
      expect(value === (tag + '|').repeat(Math.ceil(20000 / (tag.length + 1))).slice(0, 20000), `${key}: not one whole value`).toBe(true)
      expect(allowed.has(tag), `${key} holds ${tag}, allowed: ${[...allowed].filter((t) => !t.endsWith(':0:') || writers.length).slice(0, 4)}`).toBe(true)
      checked++
    }
    expect(checked).toBeGreaterThan(kill ? 500 : (procs - 1) * 500 + 999)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('many writer processes, one directory', () => {
  for (const kind of ['store', 'cache'] as const) {
    for (const durable of [true, false]) {
      for (const procs of [2, 4, 8]) {
        it(`${procs} processes, file ${kind}, ${durable ? 'durable' : 'non-durable'}: ${RUNS} run(s)`, async () => {
          for (let r = 0; r < RUNS; r++) await round(kind, procs, durable, false)
        }, 120_000 * RUNS)
      }
    }
    it(`4 processes, file ${kind}, one SIGKILLed mid-run: ${RUNS} run(s)`, async () => {
      for (let r = 0; r < RUNS; r++) await round(kind, 4, true, true)
    }, 120_000 * RUNS)
  }
})
