// Crash-and-resume demo (`npm run demo`).
//
// Runs an order workflow (awaitly's createWorkflow) in a child process that
// saves the workflow's resume state after every step with
// createStatePersistence on the native file store (or the native PostgreSQL
// store when DATABASE_URL is set, the native Redis store when REDIS_URL is). Partway through, this process kills the child with
// a real SIGKILL — no cleanup, no exit handlers — then starts it again: the
// new run loads the saved state, skips the steps already done, finishes the
// order and deletes the state. Exits non-zero if any of that does not happen.
import { fork, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openPersistence, stateOwnerKey } from './store.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const worker = join(here, 'order-worker.mjs')
const KILL_DURING = 'create-shipment'

const orderId = `ord-${process.pid}-${Date.now().toString(36)}`
const ownDir = !process.env.DATABASE_URL && !process.env.REDIS_URL && !process.env.DEMO_DIR
if (ownDir) process.env.DEMO_DIR = mkdtempSync(join(tmpdir(), 'awaitly-crash-resume-'))
const { store, prefix, persistence, describe, close } = await openPersistence()

const log = (line = '') => process.stdout.write(`${line}\n`)
// The inspector's source arguments for this store (README "Inspecting runs").
const inspectSource = process.env.DATABASE_URL
  ? ['--postgres', process.env.DATABASE_URL, ...(process.env.DEMO_PG_SCHEMA ? ['--pg-schema', process.env.DEMO_PG_SCHEMA] : [])]
  : process.env.REDIS_URL
    ? ['--redis', process.env.REDIS_URL]
    : ['--dir', process.env.DEMO_DIR]
const inspectArgs = [...inspectSource, '--kind', 'state', '--state-prefix', prefix]
const shellQuote = (a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)
const inspectCommand = (cmd) => `npx awaitly-persistence-native ${cmd} ${inspectArgs.map(shellQuote).join(' ')}`
let failed = false
const fail = (why) => {
  failed = true
  log(`✗ ${why}`)
}

/** Start one attempt; resolve with how it ended and what it told us. */
function attempt(n, { killDuring } = {}) {
  return new Promise((resolve) => {
    const child = fork(worker, [], {
      env: { ...process.env, DEMO_ORDER_ID: orderId, DEMO_ATTEMPT: String(n) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    log(`▶ run ${n}: worker pid ${child.pid}`)
    const done = []
    let killedDuring
    child.on('message', (m) => {
      if (m.type === 'step-done') done.push(m)
      if (m.type === 'step-started' && m.key === killDuring && !killedDuring) {
        killedDuring = m.key
        // Let it get properly into the step, then pull the plug.
        setTimeout(() => child.kill('SIGKILL'), 300)
      }
      if (m.type === 'complete') done.complete = m
    })
    child.on('exit', (code, signal) => resolve({ code, signal, done, killedDuring, complete: done.complete }))
  })
}

try {
  log('awaitly-persistence-native: crash-and-resume demo')
  log(`  order ${orderId}: 5 steps; the resume state is saved after each step`)
  log(`  state store: ${describe}`)
  log()

  const first = await attempt(1, { killDuring: KILL_DURING })
  if (first.signal === 'SIGKILL') {
    log(`✖ run 1 was killed with SIGKILL during step "${first.killedDuring}" (exit signal ${first.signal})`)
  } else {
    fail(`run 1 was expected to die of SIGKILL, it exited with code ${first.code} signal ${first.signal}`)
  }
  const afterCrash = await persistence.load(orderId)
  if (afterCrash) {
    log(`  saved state after the crash: ${afterCrash.steps.size} steps done (${[...afterCrash.steps.keys()].join(', ')})`)
  } else {
    fail('no saved state was found after the crash')
  }
  // What an operator sees now: the inspector's table of this store's runs.
  log(`  $ ${inspectCommand('runs')}`)
  const bin = join(here, '..', '..', 'cli', 'bin.js')
  const table = execFileSync(process.execPath, [bin, 'runs', ...inspectArgs], { encoding: 'utf8' })
  for (const l of table.trimEnd().split('\n')) log(`  ${l}`)
  log()

  const second = await attempt(2)
  if (second.code !== 0) fail(`run 2 exited with code ${second.code} signal ${second.signal}`)
  const skipped = second.done.filter((s) => !s.ran).map((s) => s.key)
  const ran = second.done.filter((s) => s.ran).map((s) => s.key)
  const left = await persistence.load(orderId)
  const listed = (await persistence.list()).includes(orderId)
  log()
  if (left !== undefined || listed) fail(`the saved state of ${orderId} is still there after completion`)
  if (afterCrash && skipped.length !== afterCrash.steps.size) {
    fail(`run 2 skipped ${skipped.length} steps, the saved state held ${afterCrash.steps.size}`)
  }
  if (!second.complete) fail('run 2 did not complete the order')
  // Leave nothing behind: the state is gone; the prefix's owner marker key
  // goes too, unless states of other runs of the demo are still under it.
  const ownerKey = stateOwnerKey(prefix)
  const othersRunning = (await persistence.list()).length > 0
  if (!othersRunning) await store.delete(ownerKey)
  const leftover = []
  if (await store.exists(`${prefix}${orderId}`)) leftover.push(`${prefix}${orderId}`)
  if (!othersRunning && (await store.exists(ownerKey))) leftover.push(ownerKey)
  if (leftover.length) fail(`keys of the demo left in the store: ${leftover.join(', ')}`)
  if (!failed) {
    log(`✓ resumed after the crash: run 2 skipped ${skipped.length} steps from the saved state (${skipped.join(', ')})`)
    log(`  and ran ${ran.length} (${ran.join(', ')}); the order completed and its saved state was deleted.`)
    log(
      othersRunning
        ? "  The prefix's owner marker key stays: other runs of the demo have states under it."
        : "  Nothing of the demo is left in the store (its state and the prefix's owner marker key are gone).",
    )
  }
  log()
  log(ownDir ? "See this store's saved runs (this demo removes its own directory when it ends; set DEMO_DIR to keep one):" : "See this store's saved runs:")
  log(`  ${inspectCommand('runs')}`)
} finally {
  await close()
  if (ownDir) rmSync(process.env.DEMO_DIR, { recursive: true, force: true })
}
process.exitCode = failed ? 1 : 0
