// Deleted and replaced values must not stay on disk after the process ends
// (issue 9): the hidden temporaries kept for reuse are unlinked at exit.
import { describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const script = path.join(__dirname, '..', 'fixtures', 'leftover-writer.cjs')

/** Runs the writer in a child process, without blocking this worker (its RPC to the runner). */
function run(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      const status = error ? (typeof (error as any).code === 'number' ? (error as any).code : 1) : 0
      resolve({ status, stdout, stderr })
    })
  })
}

/** Every marker found in any file of `dir`, by searching the raw bytes. */
function markers(dir: string): string[] {
  const found: string[] = []
  for (const name of readdirSync(dir)) {
    const bytes = readFileSync(path.join(dir, name)).toString('latin1')
    for (const m of bytes.matchAll(/MARK-(\d+)-(\d)-END/g)) found.push(`${name}:${m[0]}`)
  }
  return found
}

// each test runs child processes of several seconds on a busy machine
describe('nothing deleted or replaced stays on disk', { timeout: 120_000 }, () => {
  for (const kind of ['store', 'cache']) {
    for (const reuse of ['reuse', 'no-reuse']) {
      for (const exit of ['normal', 'exit']) {
        it(`file ${kind}, ${reuse}, ${exit === 'exit' ? 'process.exit()' : 'normal end'}: deleted values are gone, replaced ones too`, async () => {
          const dir = mkdtempSync(path.join(os.tmpdir(), 'leftover-'))
          try {
            const r = await run(kind, dir, reuse, 'delete', exit)
            expect(r.status, r.stderr).toBe(0)
            expect(markers(dir)).toEqual([])
            expect(readdirSync(dir)).toEqual([])

            const r2 = await run(kind, dir, reuse, 'overwrite', exit)
            expect(r2.status, r2.stderr).toBe(0)
            const found = markers(dir)
            // only the last round of each key, once
            expect(found.filter((m) => !m.endsWith('-2-END'))).toEqual([])
            expect(found.length).toBe(500)
            expect(readdirSync(dir).filter((n) => n.startsWith('.awaitly-tmp.'))).toEqual([])
          } finally {
            rmSync(dir, { recursive: true, force: true })
          }
        })
      }
    }
  }
})

// A replaced file kept for reuse stays only while writes keep coming: once the
// writes are done the pool is unlinked within a fraction of a second (100 ms
// idle), not at exit; the process is still running when it is checked.
describe('no temporary stays in the directory once the writes are done', { timeout: 120_000 }, () => {
  for (const kind of ['store', 'cache']) {
    it(`file ${kind} with reuse: the pool is gone shortly after the last write, before exit`, async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'leftover-idle-'))
      try {
        const r = await run(kind, dir, 'reuse', 'overwrite', 'idle')
        expect(r.status, r.stderr).toBe(0)
        const out = JSON.parse(r.stdout.trim().split('\n').pop() as string)
        // the replaced files of the last round were pooled for reuse...
        expect(out.atEnd).toBeGreaterThan(0)
        // ...and unlinked soon after, by the idle drain (not at exit: 5 s before)
        expect(out.left).toBe(0)
        expect(out.goneAfterMs).toBeLessThan(2000)
        expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([])
        expect(readdirSync(dir).length).toBe(500)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })
  }
})
