'use strict'
// Text for the terminal: ages, sizes, a safe rendering of stored text (ids
// and step names may hold control characters; they are shown escaped, never
// sent to the terminal), and fixed-column tables written a row at a time.

/** `42s`, `5m`, `3h12m`, `2d4h`; `-` for null. */
function age(ms) {
  if (ms === null || ms === undefined) return '-'
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m`
  const h = Math.floor(m / 60)
  if (h < 24) return m % 60 ? `${h}h${m % 60}m` : `${h}h`
  const d = Math.floor(h / 24)
  return h % 24 ? `${d}d${h % 24}h` : `${d}d`
}

/** `512 B`, `1.5 KB`, `3.2 MB`. */
function size(bytes) {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

// C0/C1 controls, DEL, line/paragraph separators and lone surrogates
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

/** Text with C0/C1 controls, DEL and lone surrogates escaped (`\x1b`, `\ud800`), so stored text never drives the terminal. */
function safe(text) {
  if (text === null || text === undefined) return '-'
  return String(text).replace(UNSAFE, (c) => {
    const n = c.charCodeAt(0)
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`
  })
}

/** A lease column: `held 41s`, `held` (time left not known), `expired`, `-`. */
function lease(l) {
  if (!l || l.state === 'none') return '-'
  if (l.state === 'held') return l.expiresInMs === null ? 'held' : `held ${age(l.expiresInMs)}`
  return l.state
}

/** `snapshot 4.x`, `resume 1.0`, `corrupt`. */
function kind(r) {
  if (r.kind === 'corrupt') return 'corrupt'
  return `${r.kind === 'snapshot' ? 'snapshot' : 'resume'} ${r.format}`
}

/** Time as `2026-12-04 21:40:03Z`; `-` for null. */
function time(iso) {
  if (!iso) return '-'
  const t = Date.parse(iso)
  if (!Number.isFinite(t)) return safe(iso)
  return new Date(t)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z')
}

const RUN_COLUMNS = [
  ['ID', (r) => safe(r.id)],
  ['KIND', kind],
  ['STATUS', (r) => (r.kind === 'corrupt' ? 'corrupt' : (r.status ?? '-'))],
  ['STEPS', (r) => (r.kind === 'corrupt' ? '-' : r.stepsFailed ? `${r.stepsDone} (${r.stepsFailed} err)` : String(r.stepsDone))],
  ['LAST STEP', (r) => (r.kind === 'corrupt' ? safe(r.key) : safe(r.lastStep))],
  ['UPDATED', (r) => time(r.updatedAt)],
  ['AGE', (r) => age(r.ageMs)],
  ['SIZE', (r) => size(r.size)],
  ['LEASE', (r) => lease(r.lease)],
  ['STUCK', (r) => (r.stuck ? 'STUCK' : '')],
]

/**
 * A table written a row at a time: column widths come from the header and
 * the first batch of rows (`start`), later rows keep them (a longer cell
 * pushes its line, never truncates it).
 */
class Table {
  constructor(columns, write) {
    this.columns = columns
    this.write = write
    this.widths = null
  }
  cells(r) {
    return this.columns.map(([, f]) => f(r))
  }
  start(firstRows) {
    const cells = firstRows.map((r) => this.cells(r))
    this.widths = this.columns.map(([h], i) => Math.min(60, Math.max(h.length, ...cells.map((c) => c[i].length))))
    return this.line(this.columns.map(([h]) => h))
  }
  line(cells) {
    return `${cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(this.widths[i])))
      .join('  ')
      .trimEnd()}\n`
  }
  async rows(rows) {
    let out = this.widths === null ? await this.write(this.start(rows)) : undefined
    for (const r of rows) out = await this.write(this.line(this.cells(r)))
    return out
  }
}

module.exports = { age, size, safe, lease, kind, time, RUN_COLUMNS, Table }
