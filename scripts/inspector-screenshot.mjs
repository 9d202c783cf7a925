// Makes the README's pictures of the inspector's page (docs/inspector-*.png):
// a temp file store filled by awaitly's durable.run (the test fixture
// __test__/fixtures/inspect-child.cjs: completed, failed, SIGKILLed and live
// runs), plus, so the chart has more than one bar, 40 snapshots whose
// envelope's updatedAt is moved back by hours or days (marked `backdated-`),
// and one corrupt entry. Then `serve` and Debian's chromium via
// puppeteer-core.
//
//   node scripts/inspector-screenshot.mjs
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import puppeteer from 'puppeteer-core'

const require = createRequire(import.meta.url)
const { createFileStore, createSnapshotStore } = require('../index.js')
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const child = path.join(root, '__test__', 'fixtures', 'inspect-child.cjs')
const PREFIX = 'awaitly:snapshot:'
const tmp = mkdtempSync(path.join(os.tmpdir(), 'inspector-shot-'))
const dir = path.join(tmp, 'store')
const procs = []

const run = (args) => execFileSync(process.execPath, [child, ...args], { encoding: 'utf8' })
const start = (args) =>
  new Promise((resolve) => {
    const p = spawn(process.execPath, [child, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    procs.push(p)
    p.stdout.on('data', (d) => String(d).includes('in-step-3') && resolve(p))
  })

try {
  execFileSync('mkdir', ['-p', dir])
  for (const id of ['checkout-1001', 'checkout-1002']) run(['completed', 'file', dir, PREFIX, id])
  for (const id of ['checkout-1003', 'refund-77']) run(['failed', 'file', dir, PREFIX, id])
  for (const id of ['checkout-1004', 'invoice-2024-12']) (await start(['hang', 'file', dir, PREFIX, id, '1000'])).kill('SIGKILL')
  await start(['hang', 'file', dir, PREFIX, 'checkout-1005', '600000'])
  const kv = createFileStore({ directory: dir })
  const store = createSnapshotStore({ store: kv })
  const hours = [0.2, 0.3, 0.5, 2, 3, 4, 8, 12, 20, 30, 50, 70, 100, 200, 400]
  for (let i = 0; i < 40; i++) {
    const id = `backdated-${String(i).padStart(2, '0')}`
    const status = i % 9 === 0 ? 'completed' : 'running'
    await store.save(id, {
      formatVersion: 1,
      workflowName: id,
      steps: { validate: { ok: true, value: { items: i % 5 } }, reserve: { ok: true, value: `res_${i}` } },
      execution: { status, lastUpdated: new Date().toISOString() },
      metadata: { version: 1, lastStepKey: 'reserve' },
    })
    const key = `${PREFIX}${id}`
    const text = await kv.get(key)
    const when = new Date(Date.now() - hours[i % hours.length] * 3_600_000).toISOString()
    await kv.set(key, text.replace(/^\{"updatedAt":"[^"]*"/, `{"updatedAt":"${when}"`))
  }
  await kv.set(`${PREFIX}checkout-0999`, '{"updatedAt":"2026-01-01T00:00:00.000Z","snapshot":{"formatVersion":7}}')
  await new Promise((r) => setTimeout(r, 1200)) // the killed runs' leases expire

  const server = spawn(process.execPath, [path.join(root, 'cli', 'bin.js'), 'serve', '--dir', dir, '--port', '0', '--json', '--refresh', '0', '--stuck-after', '1s'], { stdio: ['ignore', 'pipe', 'inherit'] })
  procs.push(server)
  const url = await new Promise((resolve) => server.stdout.on('data', (d) => resolve(JSON.parse(String(d)).url)))
  const browser = await puppeteer.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    userDataDir: path.join(tmp, 'profile'),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  const page = await browser.newPage()
  await page.setViewport({ width: 1200, height: 760 })
  await page.goto(url, { waitUntil: 'load' })
  await page.screenshot({ path: path.join(root, 'docs', 'inspector-runs.png') })
  await page.goto(`${url}run?id=refund-77`, { waitUntil: 'load' })
  await page.setViewport({ width: 1000, height: 640 })
  await page.screenshot({ path: path.join(root, 'docs', 'inspector-run.png') })
  await browser.close()
  console.log(execFileSync(process.execPath, [path.join(root, 'cli', 'bin.js'), 'runs', '--dir', dir, '--stuck-after', '1s', '--limit', '12'], { encoding: 'utf8' }))
} finally {
  for (const p of procs) p.kill('SIGKILL')
  rmSync(tmp, { recursive: true, force: true })
}
