'use strict'
// createFileStore: a file-backed KeyValueStore (get/set/delete/exists/keys),
// native (src/file_store.rs `KvFiles`). One file per key, named by the same
// scheme as the file cache, holding our envelope {"key","value","expiresAt"}
// so keys() can list the exact original keys. TTLs are in seconds, like the
// spec's KeyValueStore; expiry is judged with Date.now().

const { binding, call, invalidArg: typeError, drainFileDirsOnExit } = require('./native.js')

function str(value, what) {
  if (typeof value !== 'string') {
    throw typeError(`${what} must be a string, got ${value === null ? 'null' : typeof value}`)
  }
  return value
}

function createFileStore(options) {
  if (options === null || typeof options !== 'object') throw typeError('createFileStore: options must be an object')
  const { directory, extension = '.kv.json', durable = true, reuseFiles = true } = options
  if (typeof directory !== 'string' || directory === '') {
    throw typeError('createFileStore: options.directory must be a non-empty string')
  }
  if (typeof extension !== 'string') throw typeError('createFileStore: options.extension must be a string')
  if (typeof durable !== 'boolean') throw typeError('createFileStore: options.durable must be a boolean')
  if (typeof reuseFiles !== 'boolean') throw typeError('createFileStore: options.reuseFiles must be a boolean')
  const native = new binding.NativeFileStore(directory, extension, durable, reuseFiles)
  drainFileDirsOnExit()

  return {
    async get(key) {
      return call(native.get(str(key, 'key'), Date.now()))
    },
    async set(key, value, opts) {
      str(key, 'key')
      str(value, 'value')
      let expiresAt = null
      const ttl = opts === undefined || opts === null ? undefined : opts.ttl
      // Seconds, as every KeyValueStore: absent or 0 = no expiry (as the Redis store).
      if (ttl !== undefined && ttl !== null && ttl !== 0) {
        if (typeof ttl !== 'number' || !(ttl > 0 && Number.isFinite(ttl))) {
          throw typeError(`set: ttl must be a non-negative finite number of seconds, got ${String(ttl)}`)
        }
        expiresAt = Date.now() + ttl * 1000
      }
      await call(native.set(key, value, expiresAt))
    },
    async delete(key) {
      return call(native.delete(str(key, 'key'), Date.now()))
    },
    async exists(key) {
      return call(native.exists(str(key, 'key'), Date.now()))
    },
    async keys(pattern) {
      return call(native.keys(str(pattern, 'pattern'), Date.now()))
    },
  }
}

module.exports = { createFileStore }
