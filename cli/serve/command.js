'use strict'
// `serve`: a local web page over one store (node:http, no dependencies).
// Read-only unless --allow-write; then delete/release are POSTs that must
// carry this process's random token and come from this page's own Origin.
// Binds 127.0.0.1 unless --host names another address AND --allow-remote is
// given (a warning is printed). Every request's Host header must name this
// server (no DNS rebinding) unless --allow-remote.

const http = require('node:http')
const crypto = require('node:crypto')
const { UsageError } = require('../errors.js')
const { COMMON, STATUSES, stuckAfter, duration } = require('../commands.js')
const R = require('../runs.js')
const H = require('./html.js')

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: with no-referrer a browser's form POST says `Origin: null`
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
}

const serve = {
  summary: 'a local web page: counts, a chart by age and status, runs, each run as a timeline',
  usage: 'serve <source> [--port 7070] [--host 127.0.0.1] [--allow-write]',
  options: {
    ...COMMON,
    port: { type: 'string' },
    host: { type: 'string' },
    'allow-remote': { type: 'boolean' },
    'allow-write': { type: 'boolean' },
    refresh: { type: 'string' },
    limit: { type: 'string' },
    'stuck-after': { type: 'string' },
  },
  help: `  --port N                port (default 7070; 0 picks a free one)
  --host ADDR             address to bind (default 127.0.0.1); any other than loopback
                          also needs --allow-remote, and prints a warning
  --allow-remote          allow a non-loopback --host (anyone who reaches it sees your runs)
  --allow-write           enable delete and release buttons (per-process token + Origin check)
  --refresh SECONDS       auto-refresh interval of the pages (default 5; 0 = off)
  --limit N               rows in the runs table (default 500)
  --stuck-after D         a running run with no live lease is stuck after D without an update (default 5m)
  --json                  print the start line as { url, writable, source } (the page's data is at /api/runs)`,
  async run(values, positionals, io, open) {
    if (positionals.length) throw new UsageError('serve takes no arguments')
    const port = values.port === undefined ? 7070 : Number(values.port)
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new UsageError(`--port must be 0..65535, got ${JSON.stringify(values.port)}`)
    const host = values.host ?? '127.0.0.1'
    const remote = !LOOPBACK.has(host)
    if (remote && !values['allow-remote']) {
      throw new UsageError(`--host ${host} is not a loopback address: add --allow-remote to serve your runs to other machines`)
    }
    const refresh = values.refresh === undefined ? 5 : Number(values.refresh)
    if (!Number.isInteger(refresh) || refresh < 0)
      throw new UsageError(`--refresh must be a whole number of seconds, got ${JSON.stringify(values.refresh)}`)
    const limit = values.limit === undefined ? 500 : Number(values.limit)
    if (!Number.isInteger(limit) || limit < 1)
      throw new UsageError(`--limit must be a positive whole number, got ${JSON.stringify(values.limit)}`)
    const stuckAfterMs = stuckAfter(values)
    const { source, describe, close } = open()
    const state = {
      source,
      describe,
      stuckAfterMs,
      limit,
      refresh,
      writable: Boolean(values['allow-write']),
      token: crypto.randomBytes(24).toString('hex'),
      remote,
      /** @type {Set<string>} the page's own origins (filled once bound): writes must come from one */
      origins: new Set(),
      /** @type {Set<string>} the Host headers that name this server */
      hosts: new Set(),
      passes: new Map(),
    }
    const server = http.createServer((req, res) => {
      handle(state, req, res).catch((e) => send(res, 500, 'text/plain; charset=utf-8', `error: ${e?.message ? e.message : String(e)}\n`))
    })
    await new Promise((resolve, reject) => {
      server.once('error', (/** @type {NodeJS.ErrnoException} */ e) =>
        reject(e.code === 'EADDRINUSE' ? new UsageError(`port ${port} is in use: pick another with --port`) : e),
      )
      server.listen(port, host, () => resolve(undefined))
    })
    const bound = /** @type {import('node:net').AddressInfo} */ (server.address()).port
    const shown = host.includes(':') ? `[${host}]` : host
    for (const o of [`http://${shown}:${bound}`, `http://localhost:${bound}`, `http://127.0.0.1:${bound}`, `http://[::1]:${bound}`]) {
      state.origins.add(o)
      state.hosts.add(o.slice('http://'.length))
    }
    if (remote)
      io.err(
        `WARNING: serving on ${host}, not loopback: anyone who can reach port ${bound} sees every run${state.writable ? ' and can delete runs and release leases' : ''}.\n`,
      )
    const url = `http://${shown}:${bound}/`
    if (values.json) await io.out(`${JSON.stringify({ url, writable: state.writable, source: describe })}\n`)
    else await io.out(`serving ${describe} at ${url} (${state.writable ? 'writes enabled' : 'read-only'}); Ctrl-C stops\n`)
    await new Promise((resolve) => {
      const stop = () => {
        server.close(() => resolve(undefined))
        server.closeAllConnections()
      }
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
    await close()
    return 0
  },
}

function send(res, status, type, body, extra = {}) {
  res.writeHead(status, { 'content-type': type, ...SECURITY_HEADERS, ...extra })
  res.end(body)
}

const page = (_state, res, status, html) => send(res, status, 'text/html; charset=utf-8', html)
const fail = (state, res, status, title, text) =>
  page(state, res, status, H.message({ title, text, describe: state.describe, writable: state.writable, status }))

/**
 * `collect`, shared: requests with the same filters within 2 s (or while a
 * pass is running) share one pass over the store, so refreshing pages and
 * several tabs do not multiply the reads.
 */
function collectShared(state, filters) {
  const key = JSON.stringify(['status', 'stuck', 'older-than', 'limit'].map((k) => filters[k] ?? ''))
  const hit = state.passes.get(key)
  if (hit && (hit.running || Date.now() - hit.at < 2000)) return hit.promise
  const promise = collect(state, filters).finally(() => {
    entry.running = false
    entry.at = Date.now()
  })
  const entry = { running: true, at: 0, promise }
  entry.promise.catch(() => state.passes.delete(key))
  state.passes.set(key, entry)
  if (state.passes.size > 32) state.passes.delete(state.passes.keys().next().value)
  return entry.promise
}

/** Counts, age buckets and the newest matching rows, in one pass over the store. */
async function collect(state, filters) {
  const started = Date.now()
  const keep = R.rowFilter({
    status: filters.status || undefined,
    stuck: filters.stuck === '1',
    olderThanMs: filters['older-than'] ? duration('older-than', filters['older-than']) : undefined,
  })
  const limit = filters.limit && /^\d+$/.test(filters.limit) && Number(filters.limit) > 0 ? Number(filters.limit) : state.limit
  const counts = {}
  const buckets = new Map()
  const newest = new R.Newest(limit)
  let matched = 0
  const { total, leases } = await R.scanRuns(state.source, {
    stuckAfterMs: state.stuckAfterMs,
    onPage: (rows) => {
      for (const r of rows) {
        const s = R.bucketStatus(r)
        counts[s] = (counts[s] ?? 0) + 1
        const b = H.ageBucket(r.ageMs)
        const c = buckets.get(b) ?? {}
        c[s] = (c[s] ?? 0) + 1
        buckets.set(b, c)
        if (keep(r)) {
          matched++
          newest.offer(r)
        }
      }
    },
  })
  return {
    counts,
    buckets,
    rows: newest.result(),
    matched,
    total,
    limit,
    leases: leases.list.filter((l) => l.state === 'held').length,
    at: Date.now(),
    ms: Date.now() - started,
  }
}

async function handle(state, req, res) {
  if (!state.remote && !state.hosts.has(String(req.headers.host ?? '').toLowerCase())) {
    return send(res, 421, 'text/plain; charset=utf-8', 'unknown Host\n')
  }
  const url = new URL(req.url, 'http://localhost')
  const params = Object.fromEntries(url.searchParams)
  if (req.method === 'GET' || req.method === 'HEAD') {
    switch (url.pathname) {
      case '/app.css':
        return send(res, 200, 'text/css; charset=utf-8', H.CSS)
      case '/': {
        if (params.status && !STATUSES.includes(params.status)) {
          return fail(state, res, 400, 'Bad filter', `unknown status ${params.status}`)
        }
        if (params['older-than'] && !Number.isFinite(R.parseDuration(params['older-than']))) {
          return fail(state, res, 400, 'Bad filter', `older than: not a duration like 90s, 5m, 2h or 1d: ${params['older-than']}`)
        }
        const data = await collectShared(state, params)
        return page(
          state,
          res,
          200,
          H.overview({
            data,
            filters: params,
            refresh: state.refresh,
            describe: state.describe,
            writable: state.writable,
            token: state.token,
          }),
        )
      }
      case '/run': {
        const found = await findRun(state, params)
        if (!found) return fail(state, res, 404, 'No such run', `no run ${JSON.stringify(params.id ?? '')} in this store`)
        return page(
          state,
          res,
          200,
          H.runPage({ found, refresh: state.refresh, describe: state.describe, writable: state.writable, token: state.token }),
        )
      }
      case '/api/runs': {
        const data = await collectShared(state, params)
        return send(
          res,
          200,
          'application/json',
          JSON.stringify({ total: data.total, counts: data.counts, matched: data.matched, runs: data.rows }),
        )
      }
      case '/api/run': {
        const found = await findRun(state, params)
        if (!found) return send(res, 404, 'application/json', JSON.stringify({ error: { code: 'ERR_NOT_FOUND', message: 'no such run' } }))
        return send(
          res,
          200,
          'application/json',
          JSON.stringify({ ...found.row, metadata: found.doc?.metadata ?? null, steps: found.steps ?? [] }),
        )
      }
      default:
        return fail(state, res, 404, 'Not found', url.pathname)
    }
  }
  if (req.method === 'POST' && (url.pathname === '/action/delete' || url.pathname === '/action/release')) {
    if (!state.writable) return fail(state, res, 403, 'Read-only', 'this server was started without --allow-write')
    const origin = req.headers.origin
    if (!origin || !state.origins.has(origin))
      return fail(state, res, 403, 'Refused', `cross-origin request refused (Origin ${origin ?? 'missing'})`)
    const form = new URLSearchParams(await readBody(req, 16 * 1024))
    const token = form.get('token') ?? ''
    const a = Buffer.from(token)
    const b = Buffer.from(state.token)
    if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) return fail(state, res, 403, 'Refused', 'missing or wrong token')
    const id = form.get('id')
    if (!id) return fail(state, res, 400, 'Bad request', 'no run id')
    state.passes.clear()
    const where = state.source.wheres.find((w) => w.prefix === form.get('prefix')) ?? state.source.wheres[0]
    if (url.pathname === '/action/release') {
      if (!state.source.admin || where.kind !== 'snapshot') return fail(state, res, 400, 'No lease', 'this run has no lease')
      const wasLive = await state.source.admin.evict(id)
      return fail(state, res, 200, 'Released', wasLive ? `released the live lease of ${id}` : `removed the expired lease record of ${id}`)
    }
    const { createSnapshotStore } = require('../../lib/persistence/snapshots.js')
    const { createStatePersistence } = require('../../lib/persistence/state.js')
    const existed = (await R.locate({ ...state.source, wheres: [where] }, id)).length > 0
    if (where.kind === 'snapshot') await createSnapshotStore({ store: state.source.store, prefix: where.prefix }).delete(id)
    else await createStatePersistence(state.source.store, where.prefix).delete(id)
    return fail(
      state,
      res,
      existed ? 200 : 404,
      existed ? 'Deleted' : 'Not found',
      existed ? `deleted ${where.prefix}${id}` : `no run ${id}`,
    )
  }
  return fail(state, res, 405, 'Method not allowed', `${req.method} ${url.pathname}`)
}

async function findRun(state, params) {
  const id = params.id
  if (typeof id !== 'string' || id === '') return null
  const wheres = params.prefix ? state.source.wheres.filter((w) => w.prefix === params.prefix) : state.source.wheres
  if (wheres.length === 0) return null
  return R.loadRun({ ...state.source, wheres }, id, { stuckAfterMs: state.stuckAfterMs })
}

function readBody(req, max) {
  return new Promise((resolve, reject) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c) => {
      body += c
      if (body.length > max) {
        reject(new Error('request body too large'))
        req.destroy()
      }
    })
    req.on('end', () => resolve(body))
    req.on('error', reject)
  })
}

module.exports = { serve }
