'use strict'
// The inspector's commands: runs, show, leases, delete, release (serve is in
// serve/). Each has its options (node:util parseArgs specs), its --help text
// and a `run(values, positionals, io)` that writes to `io` and resolves an
// exit code. --json output is JSON Lines: one object per line, the shapes
// documented in the README ("Inspecting runs").

const { UsageError, CliError } = require('./errors.js')
const { SOURCE_OPTIONS } = require('./source.js')
const R = require('./runs.js')
const F = require('./format.js')

const STATUSES = ['running', 'completed', 'failed', 'stuck', 'corrupt', 'unknown']

function duration(name, text) {
  const ms = R.parseDuration(text)
  if (!Number.isFinite(ms)) throw new UsageError(`--${name} must be a duration like 90s, 5m, 2h or 1d, got ${JSON.stringify(text)}`)
  return ms
}

function stuckAfter(values) {
  return values['stuck-after'] === undefined ? 5 * 60_000 : duration('stuck-after', values['stuck-after'])
}

const COMMON = { ...SOURCE_OPTIONS, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }
const STUCK_HELP = '  --stuck-after D         a running run with no live lease is stuck after D without an update (default 5m)'

/** Ask on stderr, read one line of stdin: true only for y/yes. */
async function confirm(io, question) {
  io.err(`${question} [y/N] `)
  const answer = await io.readLine()
  return /^\s*y(es)?\s*$/i.test(answer ?? '')
}

/** Progress on stderr when it is a TTY and the count runs past a second. */
function progress(io, what) {
  const start = Date.now()
  let shown = false
  let last = 0
  return {
    update(done, total) {
      if (!io.errIsTTY) return
      const now = Date.now()
      if (now - start < 1000 || now - last < 100) return
      last = now
      shown = true
      io.err(`\r\x1b[K${what}: ${done.toLocaleString('en-US')}${total === null ? '' : ` / ${total.toLocaleString('en-US')}`}`)
    },
    clear() {
      if (shown) io.err('\r\x1b[K')
    },
  }
}

const commands = {
  runs: {
    summary: 'list saved runs, newest first',
    usage: 'runs <source> [--status S] [--stuck] [--older-than D] [--limit N] [--json]',
    options: {
      ...COMMON,
      status: { type: 'string' },
      stuck: { type: 'boolean' },
      'older-than': { type: 'string' },
      limit: { type: 'string' },
      'stuck-after': { type: 'string' },
      order: { type: 'string' },
    },
    help: `Options:
  --status S              only runs with status S: ${STATUSES.join(', ')}
  --stuck                 only stuck runs (running, no live lease, no update for --stuck-after)
  --older-than D          only runs last updated more than D ago (90s, 5m, 2h, 1d)
  --limit N               at most N runs (the N newest; memory stays O(N))
${STUCK_HELP}
  --order updated|none    updated (default): newest first; none: store order, each page
                          printed as read (flat memory for any number of runs)
  --json                  one JSON object per run and line (JSON Lines)`,
    async run(values, positionals, io, open) {
      if (positionals.length) throw new UsageError(`runs takes no arguments, got ${JSON.stringify(positionals[0])}`)
      if (values.status !== undefined && !STATUSES.includes(values.status))
        throw new UsageError(`--status must be one of ${STATUSES.join(', ')}, got ${JSON.stringify(values.status)}`)
      let limit = Infinity
      if (values.limit !== undefined) {
        if (!/^\d+$/.test(values.limit) || Number(values.limit) < 1)
          throw new UsageError(`--limit must be a positive whole number, got ${JSON.stringify(values.limit)}`)
        limit = Number(values.limit)
      }
      const order = values.order ?? 'updated'
      if (order !== 'updated' && order !== 'none') throw new UsageError(`--order must be updated or none, got ${JSON.stringify(order)}`)
      const keep = R.rowFilter({
        status: values.status,
        stuck: values.stuck,
        olderThanMs: values['older-than'] === undefined ? undefined : duration('older-than', values['older-than']),
      })
      const stuckAfterMs = stuckAfter(values)
      const { source, close } = open()
      const table = new F.Table(F.RUN_COLUMNS, io.out)
      const emit = (rows) => (values.json ? writeJsonLines(io, rows) : table.rows(rows))
      let printed = 0
      try {
        const bar = progress(io, 'reading runs')
        const newest = new R.Newest(limit)
        await R.scanRuns(source, {
          stuckAfterMs,
          onProgress: bar.update,
          onPage: async (rows) => {
            const kept = rows.filter(keep)
            if (order === 'updated') {
              for (const r of kept) newest.offer(r)
              return
            }
            const room = kept.slice(0, limit - printed)
            if (room.length === 0) return
            printed += room.length
            bar.clear()
            await emit(room)
          },
        })
        bar.clear()
        if (order === 'updated') {
          const rows = newest.result()
          printed = rows.length
          for (let i = 0; i < rows.length; i += 256) await emit(rows.slice(i, i + 256))
        }
        if (printed === 0 && !values.json) io.err('no runs\n')
      } finally {
        await close()
      }
      return 0
    },
  },

  show: {
    summary: "one run's steps in order, errors and causes, metadata",
    usage: 'show <id> <source> [--json]',
    options: { ...COMMON, 'stuck-after': { type: 'string' } },
    help: `${STUCK_HELP}
  --json                  the run as one JSON object`,
    async run(values, positionals, io, open) {
      if (positionals.length !== 1) throw new UsageError('show takes exactly one run id')
      const id = positionals[0]
      const { source, close } = open()
      try {
        const found = await R.loadRun(source, id, { stuckAfterMs: stuckAfter(values) })
        if (!found)
          throw new CliError(
            `no run ${JSON.stringify(id)} under ${source.wheres.map((w) => JSON.stringify(w.prefix)).join(' or ')}`,
            'ERR_NOT_FOUND',
          )
        const { row, doc, steps } = found
        const metadata = doc && !(doc.steps instanceof Map) ? (doc.metadata ?? null) : (doc?.metadata ?? null)
        if (values.json) {
          await io.out(`${JSON.stringify({ ...row, metadata, execution: doc?.execution ? doc.execution : null, steps: steps ?? [] })}\n`)
          return 0
        }
        const lines = [
          `run       ${F.safe(row.id)}`,
          `key       ${F.safe(row.key)}`,
          `kind      ${F.kind(row)}`,
          `status    ${row.kind === 'corrupt' ? 'corrupt' : (row.status ?? '-')}${row.stuck ? '  (STUCK)' : ''}`,
          `updated   ${F.time(row.updatedAt)}${row.ageMs !== null ? ` (${F.age(row.ageMs)} ago)` : ''}`,
          `size      ${F.size(row.size)}`,
          `lease     ${F.lease(row.lease)}`,
        ]
        if (row.kind === 'corrupt') lines.push(`error     ${F.safe(row.error)}`)
        if (metadata) {
          if (metadata.version !== undefined) lines.push(`version   ${F.safe(JSON.stringify(metadata.version))}`)
          if (Array.isArray(metadata.stepOrder)) lines.push(`stepOrder ${F.safe(metadata.stepOrder.join(', '))}`)
          const rest = Object.keys(metadata).filter((k) => !['version', 'stepOrder', 'stepArgs', 'lastStepKey'].includes(k))
          for (const k of rest) lines.push(`meta.${F.safe(k)}  ${F.safe(preview(metadata[k]))}`)
        }
        if (steps?.length) {
          lines.push('', `steps (${steps.length}):`)
          steps.forEach((s, i) => {
            lines.push(
              `  ${String(i + 1).padStart(3)}. ${s.ok ? 'ok   ' : 'ERROR'} ${F.safe(s.name)}${s.ok ? `  ${F.safe(preview(s.value))}` : ''}`,
            )
            if (!s.ok) {
              lines.push(`         error: ${F.safe(preview(s.error))}`)
              if (s.cause) lines.push(`         cause: ${F.safe(s.cause)}`)
            }
          })
        } else if (row.kind !== 'corrupt') lines.push('', 'steps: none recorded')
        await io.out(`${lines.join('\n')}\n`)
      } finally {
        await close()
      }
      return 0
    },
  },

  leases: {
    summary: 'live (and, on files, expired) run leases with their expiry',
    usage: 'leases <source> [--json]',
    options: COMMON,
    help: '  --json                  one JSON object per lease and line',
    async run(values, positionals, io, open) {
      if (positionals.length) throw new UsageError('leases takes no arguments')
      const { source, close } = open()
      try {
        const l = await R.readLeases(source)
        if (!l.supported) throw new CliError('this store has no leases (only the native Redis and file stores do)')
        const rows = l.list.map((x) => ({
          id: x.id,
          prefix: l.prefix,
          state: x.state,
          expiresInMs: x.expiresInMs,
          ...(x.file ? { file: x.file } : {}),
          ...(x.corrupt ? { corrupt: x.corrupt } : {}),
        }))
        rows.sort((a, b) => (a.expiresInMs ?? -1) - (b.expiresInMs ?? -1))
        if (values.json) return writeJsonLines(io, rows).then(() => 0)
        if (rows.length === 0) {
          io.err('no leases\n')
          return 0
        }
        const table = new F.Table(
          [
            ['ID', (r) => (r.id === null ? `(unreadable record ${F.safe(r.file)})` : F.safe(r.id))],
            ['STATE', (r) => r.state],
            ['EXPIRES IN', (r) => (r.state === 'held' && r.expiresInMs !== null ? F.age(r.expiresInMs) : '-')],
            ['NOTE', (r) => (r.corrupt ? F.safe(r.corrupt) : r.state === 'expired' ? 'holder gone; taken over on next acquire' : '')],
          ],
          io.out,
        )
        await table.rows(rows)
      } finally {
        await close()
      }
      return 0
    },
  },

  delete: {
    summary: 'delete saved runs (asks first unless --yes)',
    usage: 'delete <id>... <source> [--yes] [--json]',
    options: { ...COMMON, yes: { type: 'boolean', short: 'y' } },
    help: `  --yes, -y               do not ask
  --json                  one JSON object per id and line: { id, key, deleted }`,
    async run(values, positionals, io, open) {
      if (positionals.length === 0) throw new UsageError('delete takes one or more run ids')
      const { source, close } = open()
      try {
        const plan = []
        for (const id of positionals) {
          const where = await R.locate(source, id)
          if (where.length === 0) io.err(`no run ${F.safe(JSON.stringify(id))}: nothing to delete\n`)
          for (const w of where) plan.push({ id, where: w, key: w.prefix + id })
        }
        if (plan.length === 0) {
          if (values.json)
            await writeJsonLines(
              io,
              positionals.map((id) => ({ id, key: null, deleted: false })),
            )
          return 1
        }
        const leases = await R.readLeases(source)
        const live = plan.filter((p) => p.where.prefix === leases.prefix && leases.byId.get(p.id)?.state === 'held')
        if (!values.yes) {
          io.err(
            `About to delete ${plan.length} saved run${plan.length > 1 ? 's' : ''}:\n${plan.map((p) => `  ${F.safe(p.key)}\n`).join('')}`,
          )
          if (live.length)
            io.err(
              `Warning: ${live.map((p) => F.safe(p.id)).join(', ')} ${live.length > 1 ? 'have' : 'has'} a live lease: a worker may still be running it.\n`,
            )
          if (!(await confirm(io, 'Delete?'))) {
            io.err('nothing deleted\n')
            return 1
          }
        }
        const out = []
        for (const p of plan) {
          const existed = (await R.locate({ ...source, wheres: [p.where] }, p.id)).length > 0
          await deleteOne(source, p)
          out.push({ id: p.id, key: p.key, deleted: existed })
          if (!values.json) io.err(existed ? `deleted ${F.safe(p.key)}\n` : `${F.safe(p.key)} was already gone\n`)
        }
        if (values.json) await writeJsonLines(io, out)
      } finally {
        await close()
      }
      return 0
    },
  },

  release: {
    summary: "force-release a run's lease (a dead worker's); asks first unless --yes",
    usage: 'release <id> <source> [--yes] [--json]',
    options: { ...COMMON, yes: { type: 'boolean', short: 'y' } },
    help: `  --yes, -y               do not ask
  --json                  { id, released, wasLive, expiresInMs }`,
    async run(values, positionals, io, open) {
      if (positionals.length !== 1) throw new UsageError('release takes exactly one run id')
      const id = positionals[0]
      const { source, close } = open()
      try {
        if (!source.admin) throw new CliError('this store has no leases (only the native Redis and file stores do)')
        const leases = await R.readLeases(source)
        const l = leases.byId.get(id)
        if (!l) {
          if (values.json) await io.out(`${JSON.stringify({ id, released: false, wasLive: false, expiresInMs: null })}\n`)
          else io.err(`no lease for ${F.safe(JSON.stringify(id))}: nothing to release\n`)
          return 1
        }
        if (!values.yes) {
          const what =
            l.state === 'held'
              ? `a live lease${l.expiresInMs === null ? '' : ` (expires in ${F.age(l.expiresInMs)})`}; if its worker is alive it loses the lease and aborts with LEASE_EXPIRED at its next renewal`
              : 'an expired lease record'
          io.err(`${F.safe(id)} has ${what}.\n`)
          if (!(await confirm(io, 'Release it?'))) {
            io.err('nothing released\n')
            return 1
          }
        }
        const wasLive = await source.admin.evict(id)
        if (values.json) await io.out(`${JSON.stringify({ id, released: true, wasLive, expiresInMs: l.expiresInMs })}\n`)
        else
          io.err(
            wasLive
              ? `released the live lease of ${F.safe(id)}: the run can be resumed now\n`
              : `removed the expired lease record of ${F.safe(id)}\n`,
          )
      } finally {
        await close()
      }
      return 0
    },
  },
}

/** Delete one located run through its store's own API. */
async function deleteOne(source, p) {
  const { createSnapshotStore } = require('../lib/persistence/snapshots.js')
  const { createStatePersistence } = require('../lib/persistence/state.js')
  if (p.where.kind === 'snapshot') await createSnapshotStore({ store: source.store, prefix: p.where.prefix }).delete(p.id)
  else await createStatePersistence(source.store, p.where.prefix).delete(p.id)
}

/** A short one-line JSON preview of a value. */
function preview(v, max = 120) {
  let s
  try {
    s = v === undefined ? 'undefined' : JSON.stringify(v)
  } catch {
    s = String(v)
  }
  if (s === undefined) s = String(v)
  return s.length > max ? `${s.slice(0, max - 1)}…` : s
}

async function writeJsonLines(io, rows) {
  let chunk = ''
  for (const r of rows) chunk += `${JSON.stringify(r)}\n`
  if (chunk) await io.out(chunk)
}

module.exports = { commands, COMMON, STATUSES, preview, stuckAfter, duration }
