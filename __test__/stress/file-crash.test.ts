import { describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'

const require = createRequire(import.meta.url)
const { createFileCache } = require('../../index.js')
const writer = path.join(__dirname, '..', 'fixtures', 'file-crash-writer.cjs')

/** Start the writer, wait for "ready", let it run `ms`, SIGKILL it. */
function runAndKill(dir: string, seed: number, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, dir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let err = ''
    let timer: NodeJS.Timeout | undefined
    child.stderr.on('data', (d) => (err += d))
    child.stdout.on('data', (d) => {
      if (!timer && String(d).includes('ready')) timer = setTimeout(() => child.kill('SIGKILL'), ms)
    })
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer)
      if (signal === 'SIGKILL') resolve()
      else reject(new Error(`writer exited early (code ${code}, signal ${signal}): ${err}`))
    })
  })
}

/** Every cache file parses and holds one complete value written by the writer. */
function checkDirectory(dir: string): number {
  let files = 0
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.awaitly-tmp.')) continue // temporaries: not cache files
    files++
    const text = readFileSync(path.join(dir, name), 'utf8')
    const parsed = JSON.parse(text) // throws on a torn or empty file
    expect(parsed.ok, name).toBe(true)
    const v = parsed.value
    expect(v.body.length, name).toBe(v.size)
    expect(v.body, name).toBe(v.ch.repeat(v.size))
    expect(v.check, name).toBe(`${v.n}:${v.size}:${v.ch}`)
    // the JS module's exact format
    expect(text, name).toBe(JSON.stringify(parsed, null, 2))
  }
  return files
}

describe('file cache crash safety', () => {
  it('50 SIGKILLs of a writer mid-setAsync (1 B..1 MB values) never leave a torn or empty file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'awaitly-crash-'))
    try {
      let seed = 12345
      const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 1)
      let maxFiles = 0
      for (let round = 0; round < 50; round++) {
        await runAndKill(dir, next(), 5 + (next() % 150))
        maxFiles = Math.max(maxFiles, checkDirectory(dir))
      }
      expect(maxFiles).toBeGreaterThanOrEqual(2)
      expect(maxFiles).toBeLessThanOrEqual(4)
      // temporaries of the dead writers are removed by init()
      const cache = createFileCache({ directory: dir })
      await cache.init()
      expect(readdirSync(dir).filter((n) => n.startsWith('.awaitly-tmp.'))).toEqual([])
      for (const key of ['k0', 'k:1', 'k/2', 'k 3']) {
        const r = await cache.getAsync(key)
        if (r !== undefined) expect(r.value.body.length).toBe(r.value.size)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
