'use strict'
// createFileCache: the spec's file cache. With no `fs` option all disk I/O is
// native (src/file_store.rs: atomic, durable, group-committed writes); with
// an `fs` object (the spec's FileSystemInterface) that object does the I/O,
// as in the JS module. Both use the native naming scheme (src/file_name.rs)
// and the JS module's file format: JSON.stringify(serializeResult(r), null, 2).
// The glue holds what must be JS: the in-process LRU of live Result objects,
// V8's JSON, and Errors.

const { binding, call, fromNative, invalidArg: typeError, corruptError, checkKey, drainFileDirsOnExit } = require('./native.js')
const { deserializeResult } = require('./serialize.js')
const { isResult, resultText } = require('./serialize.js').internal
const { createMemoryLayer, delegateStepCache } = require('./memory-cache.js')

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
  return { directory, extension, fs: fs ?? undefined, memoryMaxSize, onCorrupt, durable, reuseFiles }
}

function createFileCache(options) {
  const { directory, extension, fs, memoryMaxSize, onCorrupt, durable, reuseFiles } = readOptions(options)
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
      }
      tick.keys.push(key)
      tick.texts.push(text)
      tick.settle.push([resolve, reject])
    })

  const sync = delegateStepCache(memory)

  if (!fs) {
    return {
      ...sync,
      async init() {
        await call(native.init())
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
      async setAsync(key, result) {
        checkKey(key)
        await queueWrite(key, resultText(key, result, 2))
        remember(key, result)
      },
      async deleteAsync(key) {
        checkKey(key)
        memory.delete(key)
        flushWrites() // writes called before this delete are queued before it
        return call(native.remove(key))
      },
      async clearAsync() {
        memory.clear()
        flushWrites()
        await call(native.clear())
      },
    }
  }

  // A caller-supplied FileSystemInterface: same names, same format; writes
  // are as atomic as its writeFile (the interface has no rename or fsync).
  const pathOf = (name) => `${directory}/${name}`
  // One key's writes and deletes run one after another, in call order, so
  // the last call wins even though fs.writeFile is not atomic.
  const tails = new Map()
  const serial = (key, fn) => {
    const prev = tails.get(key) ?? Promise.resolve()
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
  return {
    ...sync,
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
    async setAsync(key, result) {
      checkKey(key)
      const text = resultText(key, result, 2)
      const [name] = native.names(key)
      await serial(key, () => fs.writeFile(pathOf(name), text))
      remember(key, result)
    },
    async deleteAsync(key) {
      checkKey(key)
      memory.delete(key)
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
    async clearAsync() {
      memory.clear()
      // writes and deletes queued before this call land first, then the clear
      await Promise.allSettled([...tails.values()])
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
    },
  }
}

module.exports = { createFileCache }
