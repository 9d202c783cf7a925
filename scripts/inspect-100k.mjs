// The inspector over 100,000 saved runs on Redis (not part of CI's default
// run; `npm run stress:inspect`). Starts a private redis-server on a spare
// port, saves N snapshots through createSnapshotStore (the bytes durable.run
// saves: 3 steps, one of them failed in every 10th run) plus 100 live
// leases, then times
//   node cli/bin.js runs --redis URL --json | wc -l
// under /usr/bin/time -v, in both orders (newest first, and store order),
// and prints lines, seconds and peak RSS; then checks the progress line shows
// on a terminal (a pty) and not when stderr is a pipe. Stops its server by PID.
//
//   node scripts/inspect-100k.mjs [runs=100000]
import { spawn, execFileSync } from 'node:child_process'
import net from 'node:net'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const require = createRequire(import.meta.url)
const { createRedisStore, createSnapshotStore } = require('../index.js')
const N = Number(process.argv[2] ?? 100_000)
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')

const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port
    s.close(() => resolve(p))
  })
})
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
const url = `redis://127.0.0.1:${port}`
try {
  for (let i = 0; ; i++) {
    try {
      execFileSync('redis-cli', ['-p', String(port), 'ping'], { stdio: 'ignore' })
      break
    } catch {
      if (i > 100) throw new Error('redis-server did not start')
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  const kv = createRedisStore({ url })
  const store = createSnapshotStore({ store: kv })
  const t0 = Date.now()
  const cause = { type: 'error', name: 'Error', message: 'card expired', stack: 'Error: card expired\n    at charge (/app/checkout.js:42:11)' }
  for (let i = 0; i < N; i += 2000) {
    const batch = []
    for (let j = i; j < Math.min(N, i + 2000); j++) {
      const when = new Date(Date.now() - (j % 10_000) * 60_000).toISOString()
      const steps = {
        reserve: { ok: true, value: { reserved: j % 7, at: 'warehouse-7' } },
        ship: { ok: true, value: `parcel-${j}` },
        ...(j % 10 === 0 ? { charge: { ok: false, error: 'PAYMENT_DECLINED', cause, meta: { origin: 'result' } } } : {}),
      }
      batch.push(
        store.save(`order-${j}`, {
          formatVersion: 1,
          workflowName: `order-${j}`,
          steps,
          execution: { status: j % 50 === 0 ? 'completed' : 'running', lastUpdated: when, currentStepId: 'ship' },
          metadata: { version: 1, lastStepKey: j % 10 === 0 ? 'charge' : 'ship', customer: `c-${j % 1000}` },
        }),
      )
    }
    await Promise.all(batch)
  }
  for (let j = 0; j < 100; j++) await store.tryAcquire(`order-${j}`, { ttlMs: 600_000 })
  await kv.close()
  console.log(`saved ${N.toLocaleString('en-US')} runs in ${((Date.now() - t0) / 1000).toFixed(1)} s (${execFileSync('redis-cli', ['-p', String(port), 'info', 'memory']).toString().match(/used_memory_human:(\S+)/)[1]} in Redis)`)

  for (const order of ['updated', 'none']) {
    const cmd = `/usr/bin/time -o /tmp/inspect-100k-time.txt -v node cli/bin.js runs --redis ${url} --json --order ${order} | wc -l`
    const out = execFileSync('bash', ['-c', `set -o pipefail; ${cmd}`], { cwd: root }).toString().trim()
    const time = require('node:fs').readFileSync('/tmp/inspect-100k-time.txt', 'utf8')
    const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(time)[1])
    const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)/.exec(time)[1]
    console.log(`runs --json --order ${order}: ${out} lines, ${wall} wall, peak RSS ${(rss / 1024).toFixed(0)} MB`)
    if (Number(out) !== N) throw new Error(`expected ${N} lines, got ${out}`)
  }
  // stderr on a terminal (a pty from util-linux `script`): the progress line shows while it reads
  const tty = execFileSync('script', ['-qec', `node cli/bin.js runs --redis ${url} --json > /dev/null`, '/dev/null'], { cwd: root }).toString()
  const seen = tty.split('\r').filter((l) => l.includes('reading runs:'))
  console.log(`progress on a TTY: ${seen.length} updates, last: ${JSON.stringify(seen.at(-1)?.replace(/\x1b\[K/g, '') ?? null)}`)
  if (seen.length === 0) throw new Error('no progress line on a TTY')
  const piped = execFileSync('bash', ['-c', `node cli/bin.js runs --redis ${url} --json 2>&1 >/dev/null`], { cwd: root }).toString()
  if (piped !== '') throw new Error(`stderr not a TTY, yet it printed: ${JSON.stringify(piped.slice(0, 200))}`)
} finally {
  server.kill('SIGKILL')
}
