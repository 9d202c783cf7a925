import { spawn } from 'node:child_process'
import net from 'node:net'
// Shared benchmark helpers: every suite measures with `measure` and returns
// tables, so `npm run bench` prints one report with ratios side by side.

import { performance } from 'node:perf_hooks'

/**
 * Run `fn` (sync or async; it may do `batch` operations per call) repeatedly
 * for at least `minMs`, after `warmupMs` of warm-up. Returns ops/s.
 */
export async function measure(fn, { minMs = 500, warmupMs = 150, batch = 1 } = {}) {
  const isAsync = fn.constructor.name === 'AsyncFunction'
  const loop = async (ms) => {
    let calls = 0
    const start = performance.now()
    let now = start
    while (now - start < ms) {
      for (let i = 0; i < 16; i++) {
        if (isAsync) await fn()
        else fn()
      }
      calls += 16
      now = performance.now()
    }
    return (calls * batch) / ((now - start) / 1000)
  }
  await loop(warmupMs)
  return loop(minMs)
}

/** Format ops/s with thousands separators. */
export const fmt = (n) =>
  n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 2 })

/** Ratio a/b as `1.23×`. */
export const ratio = (a, b) => `${(a / b).toFixed(2)}×`

/**
 * A table: `{ title, columns: string[], rows: (string|number)[][], notes?: string[] }`.
 * Render as GitHub markdown.
 */
export function renderTable(t) {
  const head = `| ${t.columns.join(' | ')} |\n|${t.columns.map(() => '---').join('|')}|\n`
  const body = t.rows.map((r) => `| ${r.map((c) => (typeof c === 'number' ? fmt(c) : c)).join(' | ')} |`).join('\n')
  const notes = (t.notes ?? []).map((n) => `\n> ${n}`).join('')
  return `### ${t.title}\n\n${head}${body}\n${notes}\n`
}

/** A free loopback port. */
async function sparePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** A private redis-server on a spare loopback port (no persistence); stop() kills it. */
export async function startRedis() {
  const port = await sparePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  })
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => (s.destroy(), r(true)))
      s.once('error', () => r(false))
    })
    if (up) return { port, url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') }
    await new Promise((r) => setTimeout(r, 25))
  }
  child.kill('SIGKILL')
  throw new Error('redis-server did not start')
}

/** `inflightN` loops each awaiting `op(i)` (i cycling over `entries`) for `ms`; how many ops ran. */
export async function runLoops(inflightN, op, ms, entries = 10_000) {
  const end = performance.now() + ms
  let count = 0
  let seq = 0
  await Promise.all(
    Array.from({ length: inflightN }, async () => {
      while (performance.now() < end) {
        await op(seq++ % entries)
        count++
      }
    }),
  )
  return count
}

/**
 * `op` with `inflightN` calls in flight for `ms` after a warm-up: ops/s,
 * JS-thread µs per op (the main event loop's active time / ops) and process
 * CPU µs per op (all threads).
 */
export async function measureInFlight(inflightN, op, { ms, warmupMs = Math.min(200, ms / 3), entries = 10_000 }) {
  await runLoops(inflightN, op, warmupMs, entries)
  const elu0 = performance.eventLoopUtilization()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const n = await runLoops(inflightN, op, ms, entries)
  const secs = (performance.now() - t0) / 1000
  const elu = performance.eventLoopUtilization(elu0)
  const cpu = process.cpuUsage(cpu0)
  return { opsPerSec: n / secs, jsUsPerOp: (elu.active * 1000) / n, cpuUsPerOp: (cpu.user + cpu.system) / n }
}
