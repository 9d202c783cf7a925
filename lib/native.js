'use strict'
// Loads the native addon and decodes the error codes of async rejections.
// Sync native functions throw errors of the right class with `code` already
// set; async ones reject with a message `[CODE] text` (napi-rs cannot pick
// the class or code of a rejection), which `fromNative` turns into `code`.

// The platforms we publish prebuilt binaries for (package.json "napi.targets",
// npm/<platform>/package.json): platform-arch[-abi] -> package suffix.
const PREBUILT = ['linux-x64-gnu', 'linux-x64-musl', 'linux-arm64-gnu', 'darwin-x64', 'darwin-arm64', 'win32-x64-msvc']

/** This machine's platform-arch[-abi], named as napi-rs names its packages. */
function platformId() {
  const { platform, arch } = process
  if (platform === 'win32') return `win32-${arch}-msvc`
  if (platform !== 'linux') return `${platform}-${arch}`
  let musl = false
  try {
    const report = process.report && process.report.getReport()
    musl = !!report && !(report.header && report.header.glibcVersionRuntime)
  } catch {
    musl = false
  }
  return `linux-${arch}-${musl ? 'musl' : 'gnu'}`
}

/**
 * Load the addon through the generated loader (binding.js: a local
 * `*.node` first, then the platform package). Its own failure message blames
 * an npm bug; ours names the platform package that is missing.
 */
function loadBinding() {
  try {
    return require('../binding.js')
  } catch (cause) {
    const id = platformId()
    const pkg = `awaitly-persistence-native-${id}`
    // Installed but unloadable (wrong libc, corrupt file, ...)? Say why.
    let loadFailure
    try {
      require.resolve(`${pkg}/package.json`)
      try {
        require(pkg)
        loadFailure = String(cause && cause.message)
      } catch (e) {
        loadFailure = String((e && e.message) || e)
      }
    } catch {
      loadFailure = undefined
    }
    const message = loadFailure !== undefined
      ? `awaitly-persistence-native: the platform package "${pkg}" is installed but its binary failed to load: ${loadFailure}`
      : PREBUILT.includes(id)
      ? `awaitly-persistence-native: no native binary for ${id}: the optional package "${pkg}" is not installed. ` +
        `It is installed with awaitly-persistence-native unless optional dependencies were ` +
        `omitted (--omit=optional, --no-optional) or the lockfile was made on another platform. ` +
        `Fix: npm install ${pkg}@${require('../package.json').version}, or reinstall without omitting optional ` +
        `dependencies; from a source checkout, build it with \`npm run build\` (needs Rust).`
      : `awaitly-persistence-native: no prebuilt binary for ${id} (prebuilt: ${PREBUILT.join(', ')}); ` +
        `there is no package "${pkg}". Build from source with Rust: \`npm run build\` in a checkout.`
    const error = new Error(message)
    error.code = 'ERR_NATIVE_BINDING_NOT_FOUND'
    error.platformPackage = pkg
    error.cause = cause
    throw error
  }
}

const binding = loadBinding()
// Internal test hooks (src/boundary/test_hooks.rs): not part of the API, kept
// off enumeration of the binding.
if (Object.prototype.hasOwnProperty.call(binding, '__internal')) {
  Object.defineProperty(binding, '__internal', { enumerable: false })
}

const CODED = /^\[(ERR_[A-Z_]+)\] /

/** Give a native rejection its `code` (idempotent); returns the error. */
function fromNative(e) {
  if (e && typeof e.message === 'string') {
    const m = CODED.exec(e.message)
    if (m) {
      e.code = m[1]
      e.message = e.message.slice(m[0].length)
    }
  }
  return e
}

/** Await a native promise, decoding its rejection. */
async function call(promise) {
  try {
    return await promise
  } catch (e) {
    throw fromNative(e)
  }
}

/** A TypeError for a bad argument or option, with code ERR_INVALID_ARG (and V8's error as `cause`, if any). */
function invalidArg(message, cause) {
  const e = new TypeError(message, cause ? { cause } : undefined)
  e.code = 'ERR_INVALID_ARG'
  return e
}

/** A stored value that cannot be read back (code ERR_CORRUPT), worded as the Rust core's. */
function corruptError(location, reason, cause) {
  const e = new Error(`corrupt value at ${location}: ${reason}`, cause ? { cause } : undefined)
  e.code = 'ERR_CORRUPT'
  return e
}

/** A TypeError for a loaded thing that is not the document it should be (code ERR_INVALID_DOCUMENT). */
function invalidDocument(message) {
  const e = new TypeError(message)
  e.code = 'ERR_INVALID_DOCUMENT'
  return e
}

/** `got` of an argument message: undefined, null, an array, an object, a number, ... */
function describe(v) {
  if (v === null || v === undefined) return String(v)
  if (typeof v === 'object') return Array.isArray(v) ? 'an array' : 'an object'
  return `a ${typeof v}`
}

/**
 * A StepCache key: a string (awaitly's types; the JS module's `${prefix}${key}`
 * and file names made `1` and `'1'` one entry). Every method of every cache
 * checks it before it reads or writes anything; returns the key.
 */
function checkKey(key) {
  if (typeof key !== 'string') throw invalidArg(`key must be a string, got ${describe(key)}`)
  return key
}

/**
 * A KeyValueStore ttl: a whole number of seconds; undefined or 0 = no expiry
 * (returns 0). Anything else throws invalidArg naming `what`.
 */
function wholeSecondsTtl(what, ttl) {
  if (ttl === undefined || ttl === 0) return 0
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 0 || ttl > 0xffffffff) {
    throw invalidArg(`${what} must be a non-negative whole number of seconds (0 or absent: no expiry), got ${String(ttl)}`)
  }
  return ttl
}

let drainHooked = false
/** Flushers of file caches' per-tick write queues not yet handed to the native side. */
const unsentTicks = new Set()
/**
 * Called when a native file directory is opened: on process `exit` (a normal
 * end, or `process.exit()`), finish its queued operations and unlink the
 * replaced and deleted files it keeps for reuse, so nothing deleted stays on
 * disk. (A terminated worker runs no JS: the native teardown hook does it.)
 */
function drainFileDirsOnExit() {
  if (drainHooked) return
  drainHooked = true
  process.once('exit', () => {
    // writes of the job that called process.exit() are still in their tick: hand them over first
    for (const flush of unsentTicks) flush()
    binding.drainFileDirs()
  })
}

/**
 * The options of a KeyValueStore `set(key, value, options?)` (every store we
 * ship): absent/null, or `{ ttl }` as in wholeSecondsTtl (`ttl: null` = no
 * expiry too, as the npm clients take it). Returns 0 (no expiry) or the ttl.
 */
function storeTtl(options) {
  if (options === undefined || options === null) return 0
  if (typeof options !== 'object') throw invalidArg('set: options must be an object like { ttl }')
  return options.ttl === null ? 0 : wholeSecondsTtl('set: ttl', options.ttl)
}

module.exports = {
  binding,
  fromNative,
  call,
  invalidArg,
  invalidDocument,
  corruptError,
  describe,
  checkKey,
  wholeSecondsTtl,
  storeTtl,
  drainFileDirsOnExit,
  unsentTicks,
}
