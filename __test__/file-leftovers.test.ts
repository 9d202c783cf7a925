// Deleted and replaced values must not stay on disk after the process ends
// (issue 9): the hidden temporaries kept for reuse are unlinked at exit.
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const script = path.join(__dirname, 'fixtures', 'leftover-writer.cjs')

/** Every marker found in any file of `dir`, by searching the raw bytes. */
function markers(dir: string): string[] {
  const found: string[] = []
  for (const name of readdirSync(dir)) {
    const bytes = readFileSync(path.join(dir, name)).toString('latin1')
    for (const m of bytes.matchAll(/MARK-(\d+)-(\d)-END/g)) found.push(`${name}:${m[0]}`)
  }
  return found
}

describe('nothing deleted or replaced stays on disk', () => {
  for (const kind of ['store', 'cache']) {
    for (const reuse of ['reuse', 'no-reuse']) {
      for (const exit of ['normal', 'exit']) {
        it(`file ${kind}, ${reuse}, ${exit === 'exit' ? 'process.exit()' : 'normal end'}: deleted values are gone, replaced ones too`, () => {
          const dir = mkdtempSync(path.join(os.tmpdir(), 'leftover-'))
          try {
            const r = spawnSync(process.execPath, [script, kind, dir, reuse, 'delete', exit], { encoding: 'utf8' })
            expect(r.status, r.stderr).toBe(0)
            expect(markers(dir)).toEqual([])
            expect(readdirSync(dir)).toEqual([])

            const r2 = spawnSync(process.execPath, [script, kind, dir, reuse, 'overwrite', exit], { encoding: 'utf8' })
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
