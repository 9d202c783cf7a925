// A TypeScript consumer of awaitly 4.5.1 (fixtures/awaitly4-types) under
// `tsc --strict` with skipLibCheck: false, against 4.5.1's own declarations
// (installed in .ci/awaitly4; .ci/run installs it and requires this check,
// see helpers/awaitly.ts): each of our caches and snapshot stores passes to 4.x's
// createWorkflow and durable.run, our snapshots and ResumeStates to its
// helpers, without a cast. Its @ts-expect-error lines prove the types are real.
// (awaitly 1.35's consumer: types.test.ts, snapshot-types.test.ts.)
import { describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { awaitly4, root } from '../helpers/awaitly'

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
const installed = awaitly4()

describe.runIf(installed)('awaitly 4.5.1 consumer types', () => {
  it('the fixture type-checks under tsc --strict, skipLibCheck false, with no cast', async () => {
    const r = await new Promise<{ status: number; output: string }>((resolve) => {
      execFile(process.execPath, [tsc, '-p', join('__test__', 'fixtures', 'awaitly4-types', 'tsconfig.json')], { cwd: root, encoding: 'utf8' }, (error, stdout, stderr) => {
        resolve({ status: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}`.trim() })
      })
    })
    expect(r.output).toBe('')
    expect(r.status).toBe(0)
  }, 120_000)
})
