'use strict'
// createFileCache: the spec's file cache. With no `fs` option all disk I/O is
// native (src/file/dir.rs and commit.rs: atomic, durable, group-committed writes); with
// an `fs` object (the spec's FileSystemInterface) that object does the I/O,
// as in the JS module. Both use the native naming scheme (src/file/name.rs)
// and the JS module's file format: JSON.stringify(serializeResult(r), null, 2).
// The glue holds what must be JS: the in-process LRU of live Result objects,
// V8's JSON, and Errors.

const {
  binding,
  call,
  fromNative,
  invalidArg: typeError,
  corruptError,
  checkKey,
  drainFileDirsOnExit,
  unsentTicks,
} = require('./native.js')
const { deserializeResult } = require('./serialize.js')
const { isResult, resultText } = require('./serialize.js').internal
const { createMemoryLayer } = require('./memory-cache.js')
const { assemble, writeBehindOptions, createTickets } = require('./write-behind.js')
const fsp = require('node:fs/promises')

const PLAIN_KEY = /^[A-Za-z0-9_-]+$/
const STAT_BATCH = 256

const FS_METHODS = ['readFile', 'writeFile', 'unlink', 'exists', 'readdir', 'mkdir']

/** Parse a cache file's text into a Result, or throw ERR_CORRUPT. */
function parseFile(name, text) {
  let parsed
  try {
    parsed = JSON.parse(text)
  } catch (e) {
    throw corruptError(name, e.message)
  }
  if (!isResult(parsed)) {
    throw corruptError(name, 'not a serialized result')
  }
  try {
    return deserializeResult(parsed)
  } catch (e) {
    throw corruptError(name, e.message)
  }
}

function readOptions(options) {
  if (options === null || typeof options !== 'object') throw typeError('createFileCache: options must be an object')
  const { directory, extension = '.json', fs, memoryMaxSize, onCorrupt = 'error', durable = true, reuseFiles = true } =
    options
  if (typeof directory !== 'string' || directory === '') {
    throw typeError('createFileCache: options.directory must be a non-empty string')
  }
  if (typeof extension !== 'string') throw typeError('createFileCache: options.extension must be a string')
  if (fs !== undefined && fs !== null) {
    if (typeof fs !== 'object' && typeof fs !== 'function') throw typeError('createFileCache: options.fs must be an object')
    for (const m of FS_METHODS) {
      if (typeof fs[m] !== 'function') throw typeError(`createFileCache: options.fs.${m} must be a function`)
    }
  }
  if (onCorrupt !== 'error' && onCorrupt !== 'miss') {
    throw typeError("createFileCache: options.onCorrupt must be 'error' or 'miss'")
  }
  if (typeof durable !== 'boolean') throw typeError('createFileCache: options.durable must be a boolean')
  if (typeof reuseFiles !== 'boolean') throw typeError('createFileCache: options.reuseFiles must be a boolean')
  const { writeBehind, onError } = writeBehindOptions('createFileCache', options)
  return { directory, extension, fs: fs ?? undefined, memoryMaxSize, onCorrupt, durable, reuseFiles, writeBehind, onError }
}

function createFileCache(options) {
  const opts = readOptions(options)
  const { directory, extension, fs, memoryMaxSize, onCorrupt, durable, reuseFiles } = opts
  const memory = createMemoryLayer('createFileCache', memoryMaxSize)
  // Validates the extension (TypeError) and owns naming; its committer
  // thread starts only on the first native write.
  const native = new binding.NativeFileDir(directory, extension, reuseFiles)
  drainFileDirsOnExit()
  const remember = (key, result) => memory.set(key, result)

  // The writes of one tick go to the native side in one call (one hop, one
  // group commit); each caller still gets its own outcome.
  let tick = null
  const flushWrites = () => {
    if (tick === null) return
    const { keys, texts, settle } = tick
    tick = null
    unsentTicks.delete(flushWrites)
    let pending
    try {
      pending = native.writeMany(keys, texts, durable)
    } catch (e) {
      // a synchronous native failure (bad input, caught panic): fail this tick's writes
      for (const s of settle) s[1](fromNative(e))
      return
    }
    pending.then(
      (errors) => {
        for (let i = 0; i < settle.length; i++) {
          if (errors[i] === null) settle[i][0]()
          else settle[i][1](fromNative(new Error(errors[i])))
        }
      },
      (e) => {
        for (const s of settle) s[1](fromNative(e))
      },
    )
  }
  const queueWrite = (key, text) =>
    new Promise((resolve, reject) => {
      if (tick === null) {
        tick = { keys: [], texts: [], settle: [] }
        queueMicrotask(flushWrites)
        unsentTicks.add(flushWrites) // so that process.exit() in this job still sends it
      }
      tick.keys.push(key)
      tick.texts.push(text)
      tick.settle.push([resolve, reject])
    })

  // A file under a hashed name also holds its key (a "key" member first), so
  // that init() can preload it; the JS module never reads hashed names, and
  // plain names keep its format byte for byte.
  const encode = (key, result) => {
    const text = resultText(key, result, 2)
    if (PLAIN_KEY.test(key) && native.names(key)[0] === `${key}${extension}`) return text
    return `{\n  "key": ${JSON.stringify(key)},\n${text.slice(2)}`
  }
  /** The key a hashed-name file holds, or null (an older file without one, unreadable, not ours). */
  const storedKey = async (name) => {
    try {
      const key = JSON.parse(await fsp.readFile(`${directory}/${name}`, 'utf8')).key
      return typeof key === 'string' && native.names(key)[0] === name ? key : null
    } catch {
      return null // corrupt or gone: getAsync of its key reports it as today
    }
  }
  const tickets = createTickets()

  /**
   * init()'s preload: the newest files (by mtime) of keys whose name is the
   * key itself (`<key><ext>`, keys of only [A-Za-z0-9_-]; a hashed name does
   * not hold its key, so those entries stay on disk until getAsync reads
   * them) fill the in-process layer, up to memoryMaxSize. The newest ends up
   * most recently used. Corrupt files follow onCorrupt.
   */
  async function preload() {
    const limit = memoryMaxSize === undefined ? 1000 : memoryMaxSize
    if (limit === 0) return
    let entries
    try {
      entries = await fsp.readdir(directory)
    } catch (e) {
      if (e && e.code === 'ENOENT') return
      throw e
    }
    const mark = tickets.hold()
    try {
      const candidates = []
      for (const name of entries) {
        if (!name.endsWith(extension)) continue
        if (!native.isOwn(name)) continue
        const key = name.slice(0, name.length - extension.length)
        // a hashed name: the key is read from the file (below), for the newest only
        const plain = PLAIN_KEY.test(key) && native.names(key)[0] === name
        candidates.push({ key: plain ? key : null, name, mtime: 0 })
      }
      for (let i = 0; i < candidates.length; i += STAT_BATCH) {
        await Promise.all(
          candidates.slice(i, i + STAT_BATCH).map(async (c) => {
            try {
              c.mtime = (await fsp.stat(`${directory}/${c.name}`)).mtimeMs
            } catch {
              c.mtime = -1 // removed since the listing
            }
          }),
        )
      }
      const byAge = candidates.filter((c) => c.mtime >= 0).sort((a, b) => b.mtime - a.mtime)
      const chosen = []
      for (let i = 0; i < byAge.length && chosen.length < limit; i += STAT_BATCH) {
        const part = byAge.slice(i, i + STAT_BATCH)
        await Promise.all(part.map(async (c) => (c.key === null ? (c.key = await storedKey(c.name)) : undefined)))
        for (const c of part) if (c.key !== null && chosen.length < limit) chosen.push(c)
      }
      const read = []
      for (let i = 0; i < chosen.length; i += STAT_BATCH) {
        const part = await Promise.all(chosen.slice(i, i + STAT_BATCH).map((c) => call(native.read(c.key))))
        for (const r of part) read.push(r)
      }
      let firstCorrupt = null
      // oldest first, so the newest is the most recently used
      for (let i = chosen.length - 1; i >= 0; i--) {
        const { key } = chosen[i]
        const found = read[i]
        if (found === null || tickets.touchedAfter(key, mark)) continue
        try {
          memory.set(key, parseFile(found.name, found.text))
        } catch (e) {
          if (onCorrupt !== 'miss') {
            if (firstCorrupt === null) firstCorrupt = e
            continue
          }
          await call(native.quarantine(found.name, found.identity))
        }
      }
      if (firstCorrupt) throw firstCorrupt
    } finally {
      tickets.release()
    }
  }

  if (!fs) {
    return assemble('createFileCache', 'ERR_IO', memory, {
      async init() {
        await call(native.init())
        await preload()
      },
      async getAsync(key) {
        checkKey(key)
        const found = await call(native.read(key))
        if (found === null) return undefined
        let result
        try {
          result = parseFile(found.name, found.text)
        } catch (e) {
          if (onCorrupt !== 'miss') throw e
          await call(native.quarantine(found.name, found.identity))
          memory.delete(key)
          return undefined
        }
        remember(key, result)
        return result
      },
      writeOnly: (key, text) => queueWrite(key, text),
      removeOnly(key) {
        flushWrites() // writes called before this delete are queued before it
        return call(native.remove(key))
      },
      async clearOnly() {
        flushWrites()
        await call(native.clear())
      },
    }, opts, encode, tickets)
  }

  // A caller-supplied FileSystemInterface: same names, same format; writes
  // are as atomic as its writeFile (the interface has no rename or fsync).
  const pathOf = (name) => `${directory}/${name}`
  // One key's writes and deletes run one after another, in call order, so
  // the last call wins even though fs.writeFile is not atomic.
  const tails = new Map()
  // A clear in flight (readdir + unlinks): the calls made after it wait for
  // it, so it cannot unlink what they write.
  let clearing = null
  const serial = (key, fn) => {
    const prev = tails.get(key) ?? clearing ?? Promise.resolve()
    const run = prev.then(fn, fn)
    const tail = run.then(
      () => undefined,
      () => undefined,
    )
    tails.set(key, tail)
    tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key)
    })
    return run
  }
  const cache = assemble('createFileCache', 'ERR_IO', memory, {
    async init() {
      await fs.mkdir(directory, { recursive: true })
    },
    async getAsync(key) {
      checkKey(key)
      for (const name of native.names(key)) {
        const path = pathOf(name)
        if (!(await fs.exists(path))) continue
        let text
        try {
          text = await fs.readFile(path)
        } catch (e) {
          if (e && e.code === 'ENOENT') continue // removed since exists(): a miss
          throw e
        }
        let result
        try {
          if (typeof text !== 'string') throw corruptError(name, 'fs.readFile did not return a string')
          result = parseFile(name, text)
        } catch (e) {
          if (onCorrupt !== 'miss' || e.code !== 'ERR_CORRUPT') throw e
          // No rename in the interface: copy aside, then unlink.
          let aside = `${name}.corrupt`
          for (let n = 1; await fs.exists(pathOf(aside)); n++) aside = `${name}.${n}.corrupt`
          await fs.writeFile(pathOf(aside), text)
          await fs.unlink(path)
          memory.delete(key)
          return undefined
        }
        remember(key, result)
        return result
      }
      return undefined
    },
    writeOnly(key, text) {
      const [name] = native.names(key)
      return serial(key, () => fs.writeFile(pathOf(name), text))
    },
    removeOnly(key) {
      return serial(key, async () => {
        let removed = false
        for (const name of native.names(key)) {
          const path = pathOf(name)
          if (!(await fs.exists(path))) continue
          await fs.unlink(path)
          removed = true
        }
        return removed
      })
    },
    clearOnly() {
      // writes, deletes and clears queued before this call land first, then the clear
      const before = Promise.allSettled([...tails.values(), clearing])
      tails.clear()
      const run = before.then(clearFiles)
      const done = run.then(
        () => {
          if (clearing === done) clearing = null
        },
        () => {
          if (clearing === done) clearing = null
        },
      )
      clearing = done
      return run
    },
  }, opts, encode)
  return cache

  async function clearFiles() {
    let files
    try {
      files = await fs.readdir(directory)
    } catch (e) {
      if (e && e.code === 'ENOENT') return
      throw e
    }
    for (const file of files) {
      if (!native.isOwn(String(file))) continue
      try {
        await fs.unlink(pathOf(String(file)))
      } catch (e) {
        // a directory with a cache-like name is not ours to remove
        if (!e || (e.code !== 'EISDIR' && e.code !== 'EPERM')) throw e
      }
    }
  }
}

module.exports = { createFileCache }
