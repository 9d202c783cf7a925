'use strict'
// Process exit: on `exit` (a normal end, or `process.exit()`), the writes
// still queued in this tick are handed to the native side, then every open
// native file directory finishes its queued operations and unlinks the
// replaced and deleted files it keeps for reuse, so nothing deleted stays on
// disk. (A terminated worker runs no JS: the native teardown hook does it.)

const { binding } = require('./binding.js')

/** Flushers of per-tick write queues not yet handed to the native side. */
const unsentTicks = new Set()

let hooked = false
/** Called when a native file directory is opened: installs the exit hook, once. */
function drainFileDirsOnExit() {
  if (hooked) return
  hooked = true
  process.once('exit', () => {
    // writes of the job that called process.exit() are still in their tick: hand them over first
    for (const flush of unsentTicks) flush()
    binding.drainFileDirs()
  })
}

module.exports = { drainFileDirsOnExit, unsentTicks }
