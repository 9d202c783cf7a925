// The inspector's web page (`serve`) in a real headless browser: Debian's
// chromium (installed by .ci/run with apt-get), driven by puppeteer-core,
// which never downloads a browser. The store is a temp directory holding
// runs written by awaitly's durable.run (helpers/inspect.ts), among them a
// run whose id is `order-<img src=x onerror=alert(1)>`.
// Asserts: the page loads and shows the runs, counts and chart; a click
// opens a run's timeline; the XSS id is text and never runs; write actions
// fail without the token, from another Origin, and on a read-only server;
// with the page's own token they act; a screenshot lands in the temp dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import http from 'node:http'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import puppeteer, { type Browser } from 'puppeteer-core'
import { seedRuns, XSS, jsonLines, cli } from '../helpers/inspect'

const require = createRequire(import.meta.url)
const { createFileStore } = require('../../index.js')
const BIN = path.join(__dirname, '..', '..', 'cli', 'bin.js')
const CHROMIUM = '/usr/bin/chromium'

let tmp = ''
let dir = ''
let held: ChildProcess
const servers: ChildProcess[] = []
let browser: Browser
let dialogs: string[] = []

/** Start `serve` on a free port; resolves its URL and process. */
async function serve(args: string[]): Promise<{ url: string; proc: ChildProcess; err: () => string }> {
  const proc = spawn(process.execPath, [BIN, 'serve', '--dir', dir, '--port', '0', '--json', '--refresh', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  servers.push(proc)
  let out = ''
  let err = ''
  proc.stderr!.on('data', (d) => (err += d))
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      out += d
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (line) resolve(JSON.parse(line).url)
    })
    proc.on('exit', (c) => reject(new Error(`serve exited ${c}: ${err}`)))
  })
  return { url, proc, err: () => err }
}

/** A raw POST (any Origin) from outside the browser. */
function post(url: string, body: string, origin?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...(origin ? { origin } : {}) } }, (res) => {
      let b = ''
      res.on('data', (d) => (b += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

const runIds = () => jsonLines(cli(['runs', '--dir', dir, '--json']).out).map((r: any) => r.id)

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium), as .ci/run does`)
  tmp = mkdtempSync(path.join(os.tmpdir(), 'inspect-serve-'))
  dir = path.join(tmp, 'store')
  require('node:fs').mkdirSync(dir)
  const kv = createFileStore({ directory: dir })
  held = await seedRuns('file', dir, kv)
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: path.join(tmp, 'chromium-profile'),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
}, 90_000)

afterAll(async () => {
  await browser?.close()
  for (const s of servers) s.kill('SIGTERM')
  held?.kill('SIGKILL')
  if (tmp) rmSync(tmp, { recursive: true, force: true })
})

async function newPage() {
  const page = await browser.newPage()
  page.on('dialog', async (d) => {
    dialogs.push(d.message())
    await d.dismiss()
  })
  await page.setViewport({ width: 1280, height: 900 })
  return page
}

describe('inspector web page in headless chromium', () => {
  it('loads, shows counts, the chart and the runs; a click opens a run as a timeline; the XSS id stays text', async () => {
    const { url } = await serve(['--stuck-after', '500ms'])
    dialogs = []
    const page = await newPage()
    const res = await page.goto(url, { waitUntil: 'load' })
    expect(res?.status()).toBe(200)
    expect(res?.headers()['content-security-policy']).toContain("default-src 'none'")
    const ids = await page.$$eval('td.id a', (as) => as.map((a) => a.textContent))
    expect(ids.sort()).toEqual(['broken', 'idem:order-done', 'legacy-1', XSS, 'order-held', 'order-killed'].sort())
    const counts = await page.$$eval('.count-card', (cs) => Object.fromEntries(cs.map((c) => [c.querySelector('.l')!.textContent, Number(c.querySelector('.n')!.textContent)])))
    expect(counts).toMatchObject({ running: 1, stuck: 2, completed: 1, corrupt: 1, unknown: 1 })
    expect(await page.$$eval('svg.chart rect', (r) => r.length)).toBeGreaterThan(6)
    // the XSS id is shown as text: no <img> element, no dialog
    expect(await page.$$eval('img', (i) => i.length)).toBe(0)
    expect(await page.$eval(`td.id a[href*="onerror"]`, (a) => a.textContent)).toBe(XSS)

    // filter through the form
    await page.select('select[name=status]', 'completed')
    await Promise.all([page.waitForNavigation(), page.click('form.filters button[type=submit]')])
    expect(await page.$$eval('td.id a', (as) => as.map((a) => a.textContent))).toEqual(['idem:order-done'])

    // navigate to a run
    await page.goto(url, { waitUntil: 'load' })
    await Promise.all([page.waitForNavigation(), page.click('td.id a[href*="order-killed"]')])
    expect(await page.$eval('h1.run-id', (h) => h.textContent)).toBe('order-killed')
    const steps = await page.$$eval('ol.timeline li', (lis) => lis.map((li) => li.className + ':' + (li.querySelector('strong')?.textContent ?? li.textContent!.trim())))
    expect(steps).toEqual(['ok:reserve', 'ok:ship', expect.stringMatching(/^end stuck:stopped here: no live lease/)])

    // the XSS run's own page: the id is the heading's text, the error and its cause are shown
    await page.goto(url, { waitUntil: 'load' })
    await Promise.all([page.waitForNavigation(), page.click('td.id a[href*="onerror"]')])
    expect(await page.$eval('h1.run-id', (h) => h.textContent)).toBe(XSS)
    expect(await page.$eval('ol.timeline li.error', (li) => li.textContent)).toContain('card expired <- Error: issuer said no')
    expect(await page.$$eval('img', (i) => i.length)).toBe(0)
    expect(dialogs).toEqual([])

    const shot = path.join(tmp, 'run-page.png')
    await page.screenshot({ path: shot, fullPage: true })
    const png = readFileSync(shot)
    expect(png.subarray(1, 4).toString()).toBe('PNG')
    expect(statSync(shot).size).toBeGreaterThan(10_000)
    await page.close()
  }, 60_000)

  it('write actions: refused without the token, from another Origin, and on a read-only server; done with the page token', async () => {
    const ro = await serve([])
    const rw = await serve(['--allow-write'])
    const page = await newPage()

    // read-only: no buttons, and a POST is refused even with a plausible body
    await page.goto(ro.url, { waitUntil: 'load' })
    expect(await page.$$eval('form[action="/action/delete"]', (f) => f.length)).toBe(0)
    const roPost = await post(`${ro.url}action/delete`, 'id=order-killed&token=x', ro.url.replace(/\/$/, ''))
    expect(roPost.status).toBe(403)

    // writable: the browser submits the delete form with its token removed
    await page.goto(rw.url, { waitUntil: 'load' })
    const form = 'tr:has(a[href*="order-killed"]) form[action="/action/delete"]'
    await page.$eval(`${form} input[name=token]`, (i) => i.remove())
    const [noToken] = await Promise.all([page.waitForNavigation(), page.click(`${form} button`)])
    expect(noToken?.status()).toBe(403)
    expect(await page.$eval('main', (m) => m.textContent)).toContain('missing or wrong token')
    expect(runIds()).toContain('order-killed')

    // a foreign Origin with the right token is refused too
    await page.goto(rw.url, { waitUntil: 'load' })
    const token = await page.$eval(`${form} input[name=token]`, (i) => (i as HTMLInputElement).value)
    expect(token).toMatch(/^[0-9a-f]{48}$/)
    const foreign = await post(`${rw.url}action/delete`, `id=order-killed&prefix=awaitly%3Asnapshot%3A&token=${token}`, 'http://evil.example')
    expect(foreign.status).toBe(403)
    const noOrigin = await post(`${rw.url}action/delete`, `id=order-killed&prefix=awaitly%3Asnapshot%3A&token=${token}`)
    expect(noOrigin.status).toBe(403)
    expect(runIds()).toContain('order-killed')

    // the page's own form, token and Origin: deleted
    const [done] = await Promise.all([page.waitForNavigation(), page.click(`${form} button`)])
    expect(done?.status()).toBe(200)
    expect(await page.$eval('main', (m) => m.textContent)).toContain('deleted awaitly:snapshot:order-killed')
    expect(runIds()).not.toContain('order-killed')

    // release from the page: the held lease goes
    await page.goto(rw.url, { waitUntil: 'load' })
    const rel = 'tr:has(a[href*="order-held"]) form[action="/action/release"] button'
    const [released] = await Promise.all([page.waitForNavigation(), page.click(rel)])
    expect(released?.status()).toBe(200)
    expect(await page.$eval('main', (m) => m.textContent)).toContain('released the live lease of order-held')
    expect(jsonLines(cli(['leases', '--dir', dir, '--json']).out).filter((l: any) => l.state === 'held')).toEqual([])
    await page.close()
  }, 60_000)

  it('ids and hosts: no path traversal, a foreign Host header is refused, another address needs --allow-remote and warns', async () => {
    const { url } = await serve([])
    const page = await newPage()
    for (const id of ['../../../../etc/passwd', '/etc/passwd', '..']) {
      const r = await page.goto(`${url}run?id=${encodeURIComponent(id)}`)
      expect(r?.status()).toBe(404)
    }
    const r = await page.goto(`${url}run?id=${encodeURIComponent('order-held')}&prefix=${encodeURIComponent('../')}`)
    expect(r?.status()).toBe(404)
    await page.close()
    const foreignHost = await new Promise<number>((resolve) =>
      http.get(url, { headers: { host: 'attacker.example:80' } }, (res) => resolve(res.statusCode ?? 0)),
    )
    expect(foreignHost).toBe(421)
    const remote = await serve(['--host', '0.0.0.0', '--allow-remote'])
    expect(remote.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+\/$/)
    await new Promise((r) => setTimeout(r, 100))
    expect(remote.err()).toMatch(/WARNING: serving on 0\.0\.0\.0, not loopback/)
  }, 30_000)
})
