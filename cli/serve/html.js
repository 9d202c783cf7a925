'use strict'
// The pages of `serve`, as strings: every stored text (ids, keys, step
// names, values, errors) goes through `esc` (HTML) or `q` (a URL query
// value, then HTML), never raw. The pages carry no script at all; the
// server's Content-Security-Policy forbids scripts besides.

const F = require('../format.js')
const { preview } = require('../commands.js')

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c])
/** A query-string value, for an href (then HTML-escaped as an attribute). */
const q = (s) => esc(encodeURIComponent(String(s)))

const STATUS_COLORS = {
  running: '#2563eb',
  stuck: '#d97706',
  completed: '#16a34a',
  failed: '#dc2626',
  corrupt: '#7c3aed',
  unknown: '#6b7280',
}
const STATUS_ORDER = Object.keys(STATUS_COLORS)

const AGE_BUCKETS = [
  ['< 1m', 60_000],
  ['1–5m', 5 * 60_000],
  ['5–15m', 15 * 60_000],
  ['15m–1h', 3_600_000],
  ['1–6h', 6 * 3_600_000],
  ['6–24h', 86_400_000],
  ['1–7d', 7 * 86_400_000],
  ['> 7d', Infinity],
]
const NO_TIME = 'no time'

/** The age bucket label of a row. */
function ageBucket(ageMs) {
  if (ageMs === null) return NO_TIME
  for (const [label, max] of AGE_BUCKETS) if (ageMs < max) return label
  return AGE_BUCKETS[AGE_BUCKETS.length - 1][0]
}

/** A stacked bar chart (SVG) of runs per age bucket and status, drawn here. */
function chart(buckets) {
  const labels = [...AGE_BUCKETS.map(([l]) => l), NO_TIME]
  const W = 760
  const H = 240
  const left = 48
  const bottom = 36
  const top = 28
  const plotW = W - left - 12
  const plotH = H - top - bottom
  const totals = labels.map((l) => STATUS_ORDER.reduce((n, s) => n + (buckets.get(l)?.[s] ?? 0), 0))
  const max = Math.max(1, ...totals)
  const step = niceStep(max)
  const yMax = Math.ceil(max / step) * step
  const slot = plotW / labels.length
  const barW = Math.min(56, slot * 0.7)
  const y = (v) => top + plotH - (v / yMax) * plotH
  const parts = []
  for (let v = 0; v <= yMax; v += step) {
    parts.push(`<line x1="${left}" x2="${W - 12}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/>`)
    parts.push(`<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" class="axis" text-anchor="end">${v}</text>`)
  }
  labels.forEach((label, i) => {
    const x = left + i * slot + (slot - barW) / 2
    let acc = 0
    for (const s of STATUS_ORDER) {
      const n = buckets.get(label)?.[s] ?? 0
      if (!n) continue
      const y0 = y(acc + n)
      const h = y(acc) - y0
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y0.toFixed(1)}" width="${barW.toFixed(1)}" height="${Math.max(h, 0.5).toFixed(1)}" fill="${STATUS_COLORS[s]}"><title>${esc(`${label}: ${n} ${s}`)}</title></rect>`,
      )
      acc += n
    }
    if (totals[i])
      parts.push(
        `<text x="${(x + barW / 2).toFixed(1)}" y="${(y(totals[i]) - 4).toFixed(1)}" class="count" text-anchor="middle">${totals[i]}</text>`,
      )
    parts.push(
      `<text x="${(left + i * slot + slot / 2).toFixed(1)}" y="${H - bottom + 16}" class="axis" text-anchor="middle">${esc(label)}</text>`,
    )
  })
  parts.push(`<text x="${left + plotW / 2}" y="${H - 4}" class="axis" text-anchor="middle">time since last update</text>`)
  let lx = left
  for (const s of STATUS_ORDER) {
    parts.push(
      `<rect x="${lx}" y="6" width="12" height="12" fill="${STATUS_COLORS[s]}"/><text x="${lx + 16}" y="16" class="axis">${s}</text>`,
    )
    lx += 24 + s.length * 7
  }
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="runs by age and status">${parts.join('')}</svg>`
}

function niceStep(max) {
  const raw = max / 5
  const p = 10 ** Math.floor(Math.log10(raw))
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return Math.max(1, m * p)
  return Math.max(1, 10 * p)
}

function layout({ title, refresh, body, describe, writable }) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
${refresh > 0 ? `<meta http-equiv="refresh" content="${refresh}">` : ''}
<title>${esc(title)}</title>
<link rel="stylesheet" href="/app.css">
</head><body>
<header><a href="/" class="brand">awaitly runs</a><span class="src">${esc(describe)}</span><span class="mode ${writable ? 'rw' : 'ro'}">${writable ? 'writes enabled' : 'read-only'}</span></header>
<main>${body}</main>
</body></html>`
}

function statusCell(r) {
  const s = r.kind === 'corrupt' ? 'corrupt' : (r.status ?? 'unknown')
  return `<span class="badge s-${esc(s)}">${esc(s)}</span>${r.stuck ? ' <span class="badge s-stuck">stuck</span>' : ''}`
}

const runHref = (r) => `/run?id=${q(r.id)}&amp;prefix=${q(r.prefix)}`

/** The overview: counts, chart, filters, runs table. */
function overview({ data, filters, refresh, describe, writable, token }) {
  const counts = STATUS_ORDER.map(
    (s) =>
      `<a class="count-card" href="/?status=${s}"><span class="n" style="color:${STATUS_COLORS[s]}">${data.counts[s] ?? 0}</span><span class="l">${s}</span></a>`,
  ).join('')
  const opt = (v, cur) => `<option value="${esc(v)}"${v === cur ? ' selected' : ''}>${esc(v || 'any status')}</option>`
  const form = `<form class="filters" method="get" action="/">
<select name="status">${['', ...STATUS_ORDER].map((v) => opt(v, filters.status ?? '')).join('')}</select>
<label><input type="checkbox" name="stuck" value="1"${filters.stuck ? ' checked' : ''}> stuck only</label>
<label>older than <input name="older-than" size="5" value="${esc(filters['older-than'] ?? '')}" placeholder="5m"></label>
<label>limit <input name="limit" size="5" value="${esc(filters.limit ?? '')}" placeholder="${data.limit}"></label>
<button type="submit">Filter</button> <a href="/">reset</a>
</form>`
  const rows = data.rows
    .map(
      (r) => `<tr class="${r.stuck ? 'stuck' : ''}">
<td class="id"><a href="${runHref(r)}">${esc(r.id)}</a></td>
<td>${esc(F.kind(r))}</td><td>${statusCell(r)}</td>
<td class="num">${r.kind === 'corrupt' ? '–' : `${r.stepsDone}${r.stepsFailed ? ` <span class="err">(${r.stepsFailed} err)</span>` : ''}`}</td>
<td>${r.kind === 'corrupt' ? `<span class="err" title="${esc(r.error)}">${esc(r.key)}</span>` : esc(r.lastStep ?? '–')}</td>
<td title="${esc(r.updatedAt ?? '')}">${esc(F.time(r.updatedAt))}</td><td class="num">${esc(F.age(r.ageMs))}</td>
<td class="num">${esc(F.size(r.size))}</td><td>${esc(F.lease(r.lease))}</td>
${writable ? `<td>${actions(r, token)}</td>` : ''}</tr>`,
    )
    .join('')
  const body = `<section class="counts">${counts}<span class="total">${data.total} runs · ${data.leases} live lease${data.leases === 1 ? '' : 's'} · read ${esc(new Date(data.at).toISOString().slice(11, 19))}Z in ${data.ms} ms</span></section>
<section>${chart(data.buckets)}</section>
<section>${form}
<table class="runs"><thead><tr><th>id</th><th>kind</th><th>status</th><th>steps</th><th>last step</th><th>updated</th><th>age</th><th>size</th><th>lease</th>${writable ? '<th></th>' : ''}</tr></thead>
<tbody>${rows || `<tr><td colspan="10" class="empty">no runs match</td></tr>`}</tbody></table>
${data.matched > data.rows.length ? `<p class="more">showing the ${data.rows.length} newest of ${data.matched} matching runs</p>` : ''}
</section>`
  return layout({ title: `awaitly runs (${data.total})`, refresh, body, describe, writable })
}

function actions(r, token) {
  const hidden = `<input type="hidden" name="token" value="${esc(token)}"><input type="hidden" name="id" value="${esc(r.id)}"><input type="hidden" name="prefix" value="${esc(r.prefix)}">`
  const release =
    r.lease && r.lease.state !== 'none'
      ? `<form method="post" action="/action/release" class="inline">${hidden}<button>release</button></form>`
      : ''
  return `${release}<form method="post" action="/action/delete" class="inline">${hidden}<button class="danger">delete</button></form>`
}

/** A run: header facts, metadata, steps as a timeline. */
function runPage({ found, refresh, describe, writable, token }) {
  const { row: r, doc, steps } = found
  const md = doc?.metadata ?? null
  const facts = [
    ['key', esc(r.key)],
    ['kind', esc(F.kind(r))],
    ['status', statusCell(r)],
    ['updated', `${esc(F.time(r.updatedAt))}${r.ageMs !== null ? ` (${esc(F.age(r.ageMs))} ago)` : ''}`],
    ['size', esc(F.size(r.size))],
    ['lease', esc(F.lease(r.lease))],
  ]
  if (r.kind === 'corrupt') facts.push(['error', `<span class="err">${esc(r.error)}</span>`])
  if (md) {
    if (md.version !== undefined) facts.push(['version', esc(JSON.stringify(md.version))])
    if (Array.isArray(md.stepOrder)) facts.push(['stepOrder', esc(md.stepOrder.join(' → '))])
    for (const k of Object.keys(md).filter((k) => !['version', 'stepOrder', 'stepArgs', 'lastStepKey'].includes(k)))
      facts.push([`meta.${esc(k)}`, `<code>${esc(preview(md[k], 200))}</code>`])
  }
  const timeline = (steps ?? [])
    .map(
      (
        s,
        i,
      ) => `<li class="${s.ok ? 'ok' : 'error'}"><span class="dot"></span><div class="step"><span class="n">${i + 1}</span> <strong>${esc(s.name)}</strong> <span class="badge ${s.ok ? 's-completed' : 's-failed'}">${s.ok ? 'ok' : 'error'}</span>
${s.ok ? `<code>${esc(preview(s.value, 300))}</code>` : `<div class="err">error: <code>${esc(preview(s.error, 300))}</code></div>${s.cause ? `<div class="cause">cause: ${esc(s.cause)}</div>` : ''}`}</div></li>`,
    )
    .join('')
  const end =
    r.kind === 'snapshot'
      ? `<li class="end ${r.stuck ? 'stuck' : ''}"><span class="dot"></span><div class="step">${r.status === 'running' ? (r.stuck ? 'stopped here: no live lease, no update for ' : 'running; last saved ') + esc(F.age(r.ageMs)) + (r.stuck ? '' : ' ago') : `execution ${esc(r.status)}`}</div></li>`
      : ''
  const body = `<p><a href="/">← all runs</a></p>
<h1 class="run-id">${esc(r.id)}</h1>
<dl class="facts">${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>
${writable && r.kind !== undefined ? `<div class="actions">${actions(r, token)}</div>` : ''}
<h2>Steps (${steps ? steps.length : 0})</h2>
${steps?.length ? `<ol class="timeline">${timeline}${end}</ol>` : `<p class="empty">${r.kind === 'corrupt' ? 'the stored value cannot be read' : 'no steps recorded'}</p>`}`
  return layout({ title: `run ${r.id}`, refresh, body, describe, writable })
}

function message({ title, text, describe, writable, status }) {
  return layout({
    title,
    refresh: 0,
    body: `<p><a href="/">← all runs</a></p><h1>${esc(title)}</h1><p class="${status >= 400 ? 'err' : ''}">${esc(text)}</p>`,
    describe,
    writable,
  })
}

const CSS = `
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#111827;background:#f9fafb}
header{display:flex;gap:16px;align-items:center;padding:10px 20px;background:#111827;color:#e5e7eb}
header .brand{color:#fff;font-weight:700;text-decoration:none}header .src{opacity:.8;font-family:ui-monospace,monospace;font-size:12px}
header .mode{margin-left:auto;font-size:12px;padding:2px 8px;border-radius:10px}.mode.ro{background:#374151}.mode.rw{background:#b91c1c}
main{padding:16px 20px;max-width:1200px}
.counts{display:flex;gap:10px;align-items:flex-end;flex-wrap:wrap;margin-bottom:8px}
.count-card{display:flex;flex-direction:column;align-items:center;min-width:84px;padding:8px 10px;background:#fff;border:1px solid #e5e7eb;border-radius:8px;text-decoration:none;color:inherit}
.count-card .n{font-size:24px;font-weight:700}.count-card .l{font-size:12px;color:#6b7280}
.total{margin-left:8px;color:#6b7280;font-size:12px}
.chart{background:#fff;border:1px solid #e5e7eb;border-radius:8px;max-width:100%;height:auto}
.chart .grid{stroke:#e5e7eb}.chart .axis{font-size:11px;fill:#6b7280}.chart .count{font-size:11px;fill:#111827}
.filters{display:flex;gap:12px;align-items:center;margin:12px 0;flex-wrap:wrap}
table.runs{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e5e7eb}
.runs th,.runs td{padding:6px 8px;border-bottom:1px solid #f3f4f6;text-align:left;white-space:nowrap}
.runs th{background:#f3f4f6;font-size:12px;text-transform:uppercase;color:#4b5563}
.runs td.id{font-family:ui-monospace,monospace;max-width:360px;overflow:hidden;text-overflow:ellipsis}
.runs td.num{text-align:right}.runs tr.stuck{background:#fffbeb}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;color:#fff;background:#6b7280}
.s-running{background:#2563eb}.s-stuck{background:#d97706}.s-completed{background:#16a34a}.s-failed{background:#dc2626}.s-corrupt{background:#7c3aed}
.err{color:#b91c1c}.empty,.more{color:#6b7280}
.run-id{font-family:ui-monospace,monospace;font-size:20px;word-break:break-all}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px}
.facts dt{color:#6b7280}.facts dd{margin:0;word-break:break-all}
.timeline{list-style:none;padding:0 0 0 18px;margin:0;border-left:3px solid #e5e7eb}
.timeline li{position:relative;margin:0 0 12px 0;padding-left:14px}
.timeline .dot{position:absolute;left:-27px;top:4px;width:15px;height:15px;border-radius:50%;background:#16a34a;border:3px solid #f9fafb}
.timeline li.error .dot{background:#dc2626}.timeline li.end .dot{background:#2563eb}.timeline li.end.stuck .dot{background:#d97706}
.timeline .step{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:8px 10px;word-break:break-all}
.timeline .n{color:#6b7280}.timeline code{display:block;margin-top:4px;font-size:12px;color:#374151}
.cause{font-size:12px;color:#7f1d1d;margin-top:4px}
form.inline{display:inline}button.danger{color:#b91c1c}
`

module.exports = { overview, runPage, message, CSS, ageBucket }
