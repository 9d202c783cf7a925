// Renders the ratio columns of the benchmark tables (cells like `1.23×`) as
// one horizontal bar chart (SVG, no dependencies). A bar past the 1× line is
// native faster than its peer.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** Collect `{ label, value }` bars from tables: every column whose cells are `N.NN×`. */
export function ratioBars(sections) {
  const bars = []
  for (const { suite, tables } of sections) {
    for (const t of tables) {
      t.columns.forEach((col, ci) => {
        // a plain 'ratio' column compares design variants, not native vs a peer
        if (ci === 0 || col === 'ratio') return
        const cells = t.rows.map((r) => (typeof r[ci] === 'string' ? /^([\d.]+)×$/.exec(r[ci]) : null))
        if (!cells.some(Boolean)) return
        t.rows.forEach((r, ri) => {
          if (!cells[ri]) return
          // the row's name, plus a second naming column such as 'in flight'
          const name = /in flight|impl/i.test(t.columns[1] ?? '') ? `${r[0]} ×${r[1]}` : `${r[0]}`
          const label = `${suite}: ${name} — ${col}`
          bars.push({ label: label.length > 80 ? `${label.slice(0, 79)}…` : label, value: Number(cells[ri][1]) })
        })
      })
    }
  }
  return bars
}

/** An SVG bar chart, log scale, with the 1× line marked. */
export function renderChart(bars, title) {
  const rowH = 18
  const labelW = 560
  const plotW = 420
  const top = 40
  const h = top + bars.length * rowH + 30
  const lo = Math.log10(0.05)
  const hi = Math.log10(Math.max(10, ...bars.map((b) => b.value)) * 1.2)
  const x = (v) => labelW + ((Math.log10(Math.max(v, 0.05)) - lo) / (hi - lo)) * plotW
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + plotW + 80}" height="${h}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ]
  bars.forEach((b, i) => {
    const y = top + i * rowH
    const color = b.value >= 1 ? '#2a9d5c' : b.value >= 0.5 ? '#e0a030' : '#d04040'
    parts.push(
      `<text x="${labelW - 6}" y="${y + 12}" text-anchor="end">${esc(b.label)}</text>`,
      `<rect x="${labelW}" y="${y + 2}" width="${Math.max(1, x(b.value) - labelW).toFixed(1)}" height="${rowH - 5}" fill="${color}"/>`,
      `<text x="${(x(b.value) + 4).toFixed(1)}" y="${y + 12}">${b.value.toFixed(2)}×</text>`,
    )
  })
  const one = x(1).toFixed(1)
  parts.push(
    `<line x1="${one}" y1="${top - 4}" x2="${one}" y2="${h - 24}" stroke="#333" stroke-dasharray="4 3"/>`,
    `<text x="${one}" y="${h - 10}" text-anchor="middle">1× (log scale; right of the line = native faster)</text>`,
    `</svg>`,
  )
  return parts.join('\n')
}

/**
 * An SVG of grouped horizontal bars: one group per row (e.g. "get ×1"), one
 * bar per series (e.g. each client), linear scale per group (each group's
 * longest bar is full width), values printed.
 */
export function renderGroupedChart({ title, groups, series, unit }) {
  const palette = ['#2a9d5c', '#7fc8a0', '#4a78c0', '#e0a030', '#b05aa0', '#888888']
  const barH = 13
  const labelW = 170
  const plotW = 520
  const top = 56
  const groupH = series.length * barH + 14
  const h = top + groups.length * groupH + 10
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + plotW + 110}" height="${h}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ]
  series.forEach((s, i) => {
    const x = 10 + i * 130
    parts.push(`<rect x="${x}" y="30" width="10" height="10" fill="${palette[i % palette.length]}"/>`, `<text x="${x + 14}" y="39">${esc(s)}</text>`)
  })
  groups.forEach((g, gi) => {
    const y0 = top + gi * groupH
    const max = Math.max(...g.values)
    parts.push(`<text x="${labelW - 8}" y="${y0 + (series.length * barH) / 2 + 4}" text-anchor="end" font-weight="bold">${esc(g.label)}</text>`)
    g.values.forEach((v, si) => {
      const y = y0 + si * barH
      const w = Math.max(1, (v / max) * plotW)
      parts.push(
        `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${palette[si % palette.length]}"/>`,
        `<text x="${(labelW + w + 4).toFixed(1)}" y="${y + barH - 3}">${esc(Math.round(v).toLocaleString('en-US'))}${unit ? ` ${esc(unit)}` : ''}</text>`,
      )
    })
  })
  parts.push('</svg>')
  return parts.join('\n')
}
