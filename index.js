'use strict'
// Public CommonJS entry. Each lib/ module is thin glue over the native core
// (binding.js); see README.md for what lives where.

const { binding } = require('./lib/internal/binding.js')

module.exports = {
  ...require('./lib/format/serialize.js'),
  ...require('./lib/caches/memory.js'),
  ...require('./lib/caches/file.js'),
  ...require('./lib/stores/file.js'),
  ...require('./lib/caches/kv.js'),
  ...require('./lib/stores/redis.js'),
  ...require('./lib/stores/postgres.js'),
  ...require('./lib/persistence/state.js'),
  ...require('./lib/caches/hydrating.js'),
  ...require('./lib/persistence/snapshots.js'),
  isPersistenceError: require('./lib/internal/errors.js').isPersistenceError,
  escapeGlob: binding.escapeGlob,
  globMatch: binding.globMatch,
}
