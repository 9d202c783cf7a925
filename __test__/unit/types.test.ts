// index.d.ts under `tsc --strict`: the fixture imports our package by name
// (as a user does) and passes our caches, states and stores to awaitly's
// createWorkflow without casts; its @ts-expect-error lines prove the types
// are real (an `any` would leave them unused, which tsc reports).
import { describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

// The three compilations start together (each takes seconds) and each test
// awaits its own.
function runTsc(args: string[]): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [tsc, ...args], { cwd: root, encoding: 'utf8' }, (error, stdout, stderr) => {
      const status = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      resolve({ status, output: `${stdout}${stderr}`.trim() })
    })
  })
}

const fixture = runTsc(['-p', '__test__/fixtures/types/tsconfig.json'])
const declarations = runTsc(['--strict', '--noEmit', '--skipLibCheck', 'false', '--types', 'node', 'index.d.ts'])
const misuse = runTsc([
  '--strict', '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck',
  '--types', 'node', '__test__/fixtures/types/misuse.mts',
])

describe('types', () => {
  it('the usage fixture type-checks under tsc --strict with awaitly createWorkflow', async () => {
    const r = await fixture
    expect(r.output).toBe('')
    expect(r.status).toBe(0)
  }, 60_000)

  it('index.d.ts itself compiles under --strict without skipLibCheck', async () => {
    const r = await declarations
    expect(r.output).toBe('')
    expect(r.status).toBe(0)
  }, 60_000)

  it('tsc reports a misuse in the fixture (the check is not vacuous)', async () => {
    const r = await misuse
    expect(r.status).not.toBe(0)
    // Exactly the wrong cache is rejected (line 8), not the imports.
    const errorLines = r.output.split('\n').filter((l) => /error TS/.test(l))
    expect(errorLines.length).toBeGreaterThan(0)
    for (const line of errorLines) expect(line).toMatch(/^__test__\/fixtures\/types\/misuse\.mts\(8,/)
  }, 60_000)
})
