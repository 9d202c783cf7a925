// Test harness only: which installed `awaitly` this process, and every process
// it starts, loads. Preloaded with
//   AWAITLY_PREFIX=<dir> NODE_OPTIONS=--import=<this file>
// where <dir> is an npm prefix holding node_modules/awaitly (`.ci/awaitly4`,
// see .ci/run), every `awaitly` and `awaitly/<subpath>` specifier, from any
// importer (our lib/, the tests, their child processes), resolves as if it
// were imported from <dir>. The product itself has no such switch: it loads
// whatever `awaitly` its host resolves, as a user's installation does.
// Needs module.registerHooks (Node >= 22.15).
import { registerHooks } from 'node:module'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const prefix = process.env.AWAITLY_PREFIX
if (!prefix) throw new Error('select-awaitly: set AWAITLY_PREFIX to the npm prefix holding node_modules/awaitly')
const pkg = join(resolve(prefix), 'node_modules', 'awaitly', 'package.json')
if (!existsSync(pkg)) throw new Error(`select-awaitly: no awaitly installed under ${resolve(prefix)} (${pkg} is missing)`)
if (typeof registerHooks !== 'function') throw new Error(`select-awaitly: Node ${process.version} has no module.registerHooks`)

const dir = dirname(pkg)
const { exports: exported, version } = JSON.parse(readFileSync(pkg, 'utf8'))

/** The file `awaitly[/subpath]` names under these conditions, per the package's exports. */
function target(specifier, conditions) {
  const sub = specifier === 'awaitly' ? '.' : `./${specifier.slice('awaitly/'.length)}`
  const entry = exported[sub]
  if (entry === undefined) {
    const e = new Error(`Package subpath '${sub}' is not defined by "exports" in ${pkg} (awaitly ${version}, selected by select-awaitly.mjs)`)
    e.code = 'ERR_PACKAGE_PATH_NOT_EXPORTED'
    throw e
  }
  if (typeof entry === 'string') return entry
  const key = ['require', 'import', 'default'].find((c) => (c === 'default' || conditions.includes(c)) && entry[c] !== undefined)
  const file = entry[key]
  return typeof file === 'string' ? file : file.default
}

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier !== 'awaitly' && !specifier.startsWith('awaitly/')) return nextResolve(specifier, context)
    const file = join(dir, target(specifier, context.conditions ?? []))
    return { url: pathToFileURL(file).href, format: file.endsWith('.cjs') ? 'commonjs' : 'module', shortCircuit: true }
  },
})
