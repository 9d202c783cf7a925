// File cache: our native createFileCache (durable group-committed writes, and
// `durable: false`) against the spec's own recipe (createFileCache semantics
// over fs/promises: in-place writeFile, no fsync), 1 KB results, 1 and 64
// operations in flight. Also the disk's own fdatasync rate, measured here.

import { mkdtempSync, rmSync, openSync, writeSync, fdatasyncSync, closeSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { measure, ratio } from './harness.mjs'
import { createSpecFileCache } from '../__test__/fixtures/spec-file-cache.mjs'

const require = createRequire(import.meta.url)
const { createFileCache, ok } = require('../index.js')

const KEYS = 256
const result = ok({ id: 'order-1', payload: 'x'.repeat(1000 - 40) })

function fsyncRate(dir, ms = 700) {
  const file = path.join(dir, 'fsync-probe')
  const fd = openSync(file, 'w')
  const buf = Buffer.alloc(1024, 120)
  let n = 0
  const start = performance.now()
  while (performance.now() - start < ms) {
    writeSync(fd, buf, 0, buf.length, 0)
    fdatasyncSync(fd)
    n++
  }
  const rate = n / ((performance.now() - start) / 1000)
  closeSync(fd)
  rmSync(file)
  return rate
}

async function rates(cache, inFlight) {
  let i = 0
  const set = await measure(
    async () => {
      const ops = []
      for (let j = 0; j < inFlight; j++) ops.push(cache.setAsync(`k${i++ % KEYS}`, result))
      await Promise.all(ops)
    },
    { batch: inFlight, minMs: 700 },
  )
  // every key exists before reads are timed
  await Promise.all(Array.from({ length: KEYS }, (_, j) => cache.setAsync(`k${j}`, result)))
  const get = await measure(
    async () => {
      const ops = []
      for (let j = 0; j < inFlight; j++) ops.push(cache.getAsync(`k${i++ % KEYS}`))
      const got = await Promise.all(ops)
      if (!got[0] || got[0].ok !== true) throw new Error('benchmark read a miss')
    },
    { batch: inFlight, minMs: 700 },
  )
  return { set, get }
}

export async function run() {
  const root = mkdtempSync(path.join(os.tmpdir(), 'awaitly-file-bench-'))
  try {
    const fsyncs = fsyncRate(root)
    const mk = async (name, factory) => {
      const c = factory(path.join(root, name))
      await c.init()
      return c
    }
    const durable = await mk('durable', (d) => createFileCache({ directory: d, memoryMaxSize: 0 }))
    const fast = await mk('fast', (d) => createFileCache({ directory: d, memoryMaxSize: 0, durable: false }))
    const spec = await mk('spec', (d) => createSpecFileCache({ directory: d }))
    const rows = []
    const notes = []
    for (const inFlight of [1, 64]) {
      const d = await rates(durable, inFlight)
      const f = await rates(fast, inFlight)
      const s = await rates(spec, inFlight)
      rows.push([`setAsync ×${inFlight}`, d.set, f.set, s.set, ratio(d.set, s.set), ratio(f.set, s.set)])
      rows.push([`getAsync ×${inFlight}`, d.get, f.get, s.get, ratio(d.get, s.get), ratio(f.get, s.get)])
      notes.push(
        `${inFlight} in flight: durable writes = ${(d.set / fsyncs).toFixed(2)}× the disk's sequential fdatasync rate`,
      )
    }
    rows.push(['disk: write 1 KB + fdatasync, sequential', fsyncs, '', '', '', ''])
    return [
      {
        title: 'File cache, 1 KB results (ops/s)',
        columns: ['operation', 'native durable', 'native durable:false', 'JS spec recipe (fs/promises)', 'durable / JS', 'durable:false / JS'],
        rows,
        notes: [
          'native durable: each tick’s writes are one group commit: temporaries (reusing replaced files, so no block allocation or freeing), one syncfs, parallel renames, one directory fsync; a write resolves only once on disk.',
          'native durable:false: same path without the directory fsync, and data syncs only for reused files (a write into a fresh temporary is not synced): resolves before the rename is on disk.',
          'JS spec recipe: fs.writeFile in place (not atomic, not durable); reads do exists + readFile + JSON.parse.',
          'In-process LRU disabled (memoryMaxSize: 0) so every getAsync reads the disk.',
          ...notes,
        ],
      },
    ]
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}
