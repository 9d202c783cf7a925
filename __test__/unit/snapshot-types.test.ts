// snapshot.d.ts under `tsc --strict`, as __test__/unit/types.test.ts does for
// index.d.ts: the fixture imports every runtime export and type of
// `awaitly-persistence-native/snapshot` by package name and checks each is
// awaitly 1.35's own type (exact equality for types, assignability both ways
// for the module and the functions), passing our snapshots, memory cache and
// a SnapshotStore-typed store to createWorkflow and durable.run without casts;
// its @ts-expect-error lines prove the types are real.
import { describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

function runTsc(args: string[]): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [tsc, ...args], { cwd: root, encoding: 'utf8' }, (error, stdout, stderr) => {
      const status = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      resolve({ status, output: `${stdout}${stderr}`.trim() })
    })
  })
}

// Both compilations start together; each test awaits its own.
const fixture = runTsc(['-p', '__test__/fixtures/snapshot-types/tsconfig.json'])
const declarations = runTsc(['--strict', '--noEmit', '--skipLibCheck', 'false', '--types', 'node', 'snapshot.d.ts'])

describe('snapshot subpath types', () => {
  it('the fixture type-checks under tsc --strict against awaitly 1.35\'s own types', async () => {
    const r = await fixture
    expect(r.output).toBe('')
    expect(r.status).toBe(0)
  }, 60_000)

  it('snapshot.d.ts itself compiles under --strict without skipLibCheck', async () => {
    const r = await declarations
    expect(r.output).toBe('')
    expect(r.status).toBe(0)
  }, 60_000)
})
