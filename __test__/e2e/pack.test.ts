// Install without Rust: `npm pack` the main package (scripts on: its prepack
// drops `scripts`, so the packed package.json has no build script) and the
// linux-x64-gnu platform package (its .node copied in, as `napi artifacts` does before
// publishing), install both from the tarballs into a new project with no
// registry access (--offline) and with `cargo`/`rustc` off PATH, then run a
// TypeScript file there that imports the package by name (ESM and CJS) and
// uses every factory and the `/snapshot` subpath (import and require).
// Finally remove the platform package: loading must fail with an error naming it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const PLATFORM = 'linux-x64-gnu'
const PLATFORM_PKG = `awaitly-persistence-native-${PLATFORM}`
const NODE_FILE = `awaitly-persistence-native.${PLATFORM}.node`
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli')
const prefix = `test:pack:${process.pid}-${Date.now().toString(36)}:`

// PATH without any directory holding cargo or rustc; no Rust env either.
const env: NodeJS.ProcessEnv = { ...process.env }
for (const k of Object.keys(env)) if (/^(CARGO|RUSTUP|RUSTC)/.test(k)) delete env[k]
env.PATH = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((d) => d && !existsSync(join(d, 'cargo')) && !existsSync(join(d, 'rustc')))
  .join(delimiter)
env.npm_config_cache = '' // set below to a private cache
env.PACK_PREFIX = prefix

function run(cmd: string, args: string[], cwd: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(cmd, args, { cwd, env, encoding: 'utf8', timeout: 120_000, maxBuffer: 1 << 24 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr })
    })
  })
}

let work: string
let project: string

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'awaitly-pack-'))
  env.npm_config_cache = join(work, 'npm-cache')
  project = join(work, 'consumer')
}, 120_000)

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true })
})

describe('packed packages install and work without Rust', () => {
  it('has no cargo or rustc on the PATH it installs with', async () => {
    expect(env.PATH).not.toBe('')
    for (const tool of ['cargo', 'rustc']) {
      const r = await run('sh', ['-c', `command -v ${tool} || echo missing`], work)
      expect(r.stdout.trim(), tool).toBe('missing')
    }
  })

  it('packs, installs offline from the tarballs and runs a TypeScript consumer (ESM + CJS, every factory)', async () => {
    const built = join(root, NODE_FILE)
    expect(existsSync(built), `${NODE_FILE} must be built first (npm run build)`).toBe(true)

    // Main package: packed with its scripts on, as `npm pack` / `npm publish`
    // do, from a copy of the checkout (prepack rewrites package.json for the
    // duration of the pack; other test files read the checkout's meanwhile).
    const packs = join(work, 'tarballs')
    mkdirSync(packs)
    const source = join(work, 'source')
    const manifestText = readFileSync(join(root, 'package.json'), 'utf8')
    const manifest = JSON.parse(manifestText)
    expect(manifest.scripts.prepare, 'a checkout builds on npm install').toBe('npm run build')
    for (const entry of [...manifest.files, 'package.json', 'README.md', 'scripts']) {
      cpSync(join(root, entry), join(source, entry), { recursive: true })
    }
    const main = await run('npm', ['pack', '--pack-destination', packs, source], work)
    expect(main.code, `${main.stdout}\n${main.stderr}`).toBe(0)
    // prepack stripped the scripts, so `prepare` (a build) did not run, and postpack restored them
    expect(`${main.stdout}\n${main.stderr}`).not.toMatch(/napi build/)
    expect(readFileSync(join(source, 'package.json'), 'utf8')).toBe(manifestText)
    expect(existsSync(join(source, '.package.json.dev'))).toBe(false)
    // Platform package, staged as `napi artifacts` leaves npm/<platform>.
    const staged = join(work, 'stage', PLATFORM)
    cpSync(join(root, 'npm', PLATFORM), staged, { recursive: true })
    copyFileSync(built, join(staged, NODE_FILE))
    const plat = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', packs, staged], work)
    expect(plat.code, plat.stderr).toBe(0)
    const tarballs = readdirSync(packs).sort()
    expect(tarballs).toEqual([`${PLATFORM_PKG}-0.1.0.tgz`, 'awaitly-persistence-native-0.1.0.tgz'].sort())

    // The main tarball carries no binary and no Rust sources.
    const listing = await run('tar', ['-tzf', join(packs, 'awaitly-persistence-native-0.1.0.tgz')], work)
    expect(listing.stdout).toContain('package/index.mjs')
    expect(listing.stdout).toContain('package/binding.js')
    for (const f of ['snapshot.js', 'snapshot.mjs', 'snapshot.d.ts', 'lib/format/snapshot.js']) expect(listing.stdout).toContain(`package/${f}`)
    expect(listing.stdout).not.toMatch(/\.node\b|Cargo\.toml|\.rs\b/)
    // The packed package.json asks nobody to build: no lifecycle script at all.
    const packed = await run('tar', ['-xOzf', join(packs, 'awaitly-persistence-native-0.1.0.tgz'), 'package/package.json'], work)
    expect(packed.code, packed.stderr).toBe(0)
    const packedManifest = JSON.parse(packed.stdout)
    expect(packedManifest.scripts, 'no prepare/install/postinstall or any other script').toBeUndefined()
    expect(packedManifest.engines).toEqual(manifest.engines)
    expect(packedManifest.exports).toEqual(manifest.exports)

    // A new project; both packages from the tarballs, nothing from a registry.
    cpSync(join(root, '__test__', 'fixtures', 'pack'), project, { recursive: true })
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }))
    const install = await run(
      'npm',
      ['install', '--offline', '--no-audit', '--no-fund', join(packs, tarballs[0]), join(packs, tarballs[1])],
      project,
    )
    expect(install.code, `${install.stdout}\n${install.stderr}`).toBe(0)
    const installed = join(project, 'node_modules')
    expect(existsSync(join(installed, PLATFORM_PKG, NODE_FILE))).toBe(true)
    expect(readdirSync(join(installed, 'awaitly-persistence-native')).filter((f) => f.endsWith('.node'))).toEqual([])

    const r = await run(process.execPath, [tsxCli, 'consumer.mts'], project)
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout.trim().split('\n').pop() as string)
    expect(out.memory).toEqual({ a: { ok: true, value: 1 }, b: null, c: { ok: true, value: 3 } })
    expect(out.fileCache).toEqual({ ok: true, value: { id: 1 } })
    expect(out.fileStore).toEqual({ get: 'v', exists: true, keys: ['k'] })
    expect(out.kvCache).toEqual({ ok: false, error: 'DECLINED' })
    expect(out.list).toEqual(['run-1'])
    expect(out.hydrated).toEqual({ ok: true, value: { n: 1 } })
    expect(out.redisState).toEqual(['step-1'])
    expect(out.roundTrip).toEqual([['step-1', { result: { ok: true, value: { n: 1 } } }]])
    expect(out.result).toEqual({ ok: true, value: 'x' })
    expect(out.cjs).toEqual({
      cached: { ok: true, value: 42 },
      state: '{"version":1,"entries":{"s":{"result":{"ok":false,"error":"E"}}}}',
      factories: [
        'createFileCache',
        'createFileStore',
        'createHydratingCache',
        'createKVCache',
        'createMemoryCache',
        'createPostgresStore',
        'createRedisStore',
        'createSnapshotStore',
        'createStatePersistence',
      ],
    })
    expect(out.sameInstance).toBe(true)
    const snapshotExports = [
      'SnapshotDecodeError',
      'SnapshotFormatError',
      'SnapshotMismatchError',
      'assertValidSnapshot',
      'createMemoryCache',
      'createSnapshotStore',
      'deserializeCauseNew',
      'looksLikeWorkflowSnapshot',
      'mergeSnapshots',
      'serializeError',
      'serializeThrown',
      'validateSnapshot',
    ]
    expect(out.snapshot).toEqual({
      exports: snapshotExports,
      valid: true,
      cause: {
        type: 'error',
        name: 'Error',
        message: 'boom',
        cause: { type: 'thrown', originalType: 'string', stringRepresentation: 'why', value: 'why' },
      },
      error: ['Invalid formatVersion: expected 1, got 2', 'Missing required field: steps', 'Missing required field: execution'],
      merged: ['a', 'b'],
      cacheHit: null,
      sameAsRequire: true,
      requiredExports: snapshotExports,
    })
    expect(out.binary).toBe(join(installed, PLATFORM_PKG, NODE_FILE))

    // Without the platform package, the error names it.
    rmSync(join(installed, PLATFORM_PKG), { recursive: true, force: true })
    const missing = await run(
      process.execPath,
      ['-e', "try { require('awaitly-persistence-native') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }"],
      project,
    )
    const e = JSON.parse(missing.stdout.trim())
    expect(e.code).toBe('ERR_NATIVE_BINDING_NOT_FOUND')
    expect(e.message).toContain(`"${PLATFORM_PKG}"`)
  }, 120_000)
})
