// `npm run bench`: every suite in one run, native side by side with its JS
// peers, ratios reported. Writes benchmark/results.md (README copies it) and
// benchmark/results.svg (a chart of every ratio).
// Run one suite: `npm run bench -- serialize`.

import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { renderTable } from './harness.mjs'
import { ratioBars, renderChart, renderGroupedChart } from './chart.mjs'

const suites = ['serialize', 'memory-cache', 'memory-soak', 'file', 'redis-clients', 'redis-tls', 'redis', 'write-behind', 'snapshot', 'cluster']
const only = process.argv.slice(2)

const out = [
  `# Benchmarks\n`,
  `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${new Date().toISOString()}\n`,
]
const sections = []
for (const name of suites) {
  if (only.length && !only.includes(name)) continue
  const mod = await import(`./${name}.mjs`)
  console.log(`\n## ${name}`)
  const tables = await mod.run()
  sections.push({ suite: name, tables })
  out.push(`## ${name}\n`)
  for (const t of tables) {
    // a suite's own chart (benchmark/<file>), written on every run of it
    if (t.chart) writeFileSync(new URL(`./${t.chart.file}`, import.meta.url), renderGroupedChart(t.chart))
    const md = renderTable(t)
    console.log(md)
    out.push(md)
  }
}
if (!only.length) {
  writeFileSync(new URL('./results.md', import.meta.url), out.join('\n'))
  const bars = ratioBars(sections)
  writeFileSync(new URL('./results.svg', import.meta.url), renderChart(bars, 'awaitly-persistence-native vs JS peers (ops/s ratio)'))
  console.log(`wrote benchmark/results.md and benchmark/results.svg (${bars.length} ratios)`)
}
