'use strict'
// Public CommonJS entry. Each lib/ module is thin glue over the native core
// (binding.js); see README.md for what lives where.

const { binding } = require('./lib/native.js')

module.exports = {
  ...require('./lib/serialize.js'),
  ...require('./lib/memory-cache.js'),
  ...require('./lib/file-cache.js'),
  ...require('./lib/file-store.js'),
  ...require('./lib/kv-cache.js'),
  ...require('./lib/redis-store.js'),
  ...require('./lib/postgres-store.js'),
  ...require('./lib/state-persistence.js'),
  ...require('./lib/hydrating-cache.js'),
  ...require('./lib/snapshot-store.js'),
  ...require('./lib/errors.js'),
  escapeGlob: binding.escapeGlob,
  globMatch: binding.globMatch,
}
