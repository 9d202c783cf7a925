// The awaitly the tests run against, under one set of names for 1.35 and 4.x.
//
// `awaitly` resolves as Node resolves it for this file: the devDependency
// (1.35) under `npm test`; the one select-awaitly.mjs points every process at
// when CI preloads it (4.5.1, from .ci/awaitly4). Test files that must run on
// both import awaitly's API from here, never by name (vitest resolves a
// static `import 'awaitly'` itself, past Node's hooks).
//
// awaitlyAt(dir) loads one installed awaitly by its directory, whatever the
// hook says: the differential tests compare our helpers with 1.35 and 4.5.1
// side by side.
import { createRequire } from 'node:module'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

function packageDirOf(file: string): string {
  for (let d = dirname(file); d !== dirname(d); d = dirname(d)) {
    const p = join(d, 'package.json')
    if (existsSync(p) && JSON.parse(readFileSync(p, 'utf8')).name === 'awaitly') return d
  }
  throw new Error(`no awaitly package.json above ${file}`)
}

/** The directory of the awaitly this process resolves. */
export const awaitlyDir = packageDirOf(require.resolve('awaitly'))
export const awaitlyVersion: string = JSON.parse(readFileSync(join(awaitlyDir, 'package.json'), 'utf8')).version
export const awaitlyMajor = Number(awaitlyVersion.split('.')[0])

const main = require('awaitly')
const durableModule = require('awaitly/durable')
// 4.x: the workflow API is exported from `awaitly`; 1.35: from `awaitly/workflow`.
const workflowModule = typeof main.createWorkflow === 'function' ? main : require('awaitly/workflow')

export const ok: (value?: unknown) => any = main.ok
export const err: (error: unknown, options?: { cause?: unknown }) => any = main.err
export const createWorkflow: (name: string, deps: any, options?: any) => any = workflowModule.createWorkflow
export const createResumeStateCollector: () => any = workflowModule.createResumeStateCollector
export const serializeResumeState: (state: any) => any = workflowModule.serializeResumeState
export const deserializeResumeState: (state: any) => any = workflowModule.deserializeResumeState
export const durable: any = durableModule.durable
/** 4.x records stepOrder/stepArgs in snapshots and rejects a drifted resume; 1.35 does neither. */
export const WorkflowShapeDriftError: (new (...a: any[]) => Error) | undefined = durableModule.WorkflowShapeDriftError

/** An installed awaitly, by directory: its version and `load('./durable')` of an export (the `require` build). */
export function awaitlyAt(dir: string) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  return {
    version: pkg.version as string,
    load(subpath: '.' | `./${string}`): any {
      const entry = pkg.exports?.[subpath]
      const file = typeof entry === 'string' ? entry : entry?.require?.default ?? entry?.require
      if (typeof file !== 'string') throw new Error(`awaitly ${pkg.version} has no export ${subpath}`)
      return require(join(dir, file))
    },
  }
}

/** Where .ci/run installs awaitly 4.5.1 (`npm install --prefix .ci/awaitly4`). */
export const AWAITLY4_DIR = join(root, '.ci', 'awaitly4', 'node_modules', 'awaitly')

/**
 * awaitly 4.5.1 from .ci/awaitly4, or null when it is not installed there.
 * .ci/run installs it and sets AWAITLY4_REQUIRED=1: then a missing install
 * throws instead of leaving the 4.5.1 comparisons out.
 */
export function awaitly4(): ReturnType<typeof awaitlyAt> | null {
  if (!existsSync(join(AWAITLY4_DIR, 'package.json'))) {
    if (process.env.AWAITLY4_REQUIRED === '1') throw new Error(`awaitly 4.5.1 is not installed at ${AWAITLY4_DIR} (.ci/run installs it before the tests)`)
    return null
  }
  const a = awaitlyAt(AWAITLY4_DIR)
  if (a.version !== '4.5.1') throw new Error(`expected awaitly 4.5.1 at ${AWAITLY4_DIR}, found ${a.version}`)
  return a
}
