'use strict'
// The store a command reads, from its source options: --dir (native file
// store), --redis URL (redis:// or rediss://), --cluster host:port,... ;
// each with --prefix (snapshots) and --state-prefix (1.0 resume states).

const fs = require('node:fs')
const { createRedisStore } = require('../lib/stores/redis.js')
const { createFileStore } = require('../lib/stores/file.js')
const { createPostgresStore } = require('../lib/stores/postgres.js')
const { openSource, SNAPSHOT_DEFAULT_PREFIX, STATE_DEFAULT_PREFIX } = require('./runs.js')
const { UsageError, CliError } = require('./errors.js')

const SOURCE_OPTIONS = {
  dir: { type: 'string' },
  redis: { type: 'string' },
  cluster: { type: 'string' },
  postgres: { type: 'string' },
  'pg-schema': { type: 'string' },
  'pg-table': { type: 'string' },
  prefix: { type: 'string' },
  'state-prefix': { type: 'string' },
  kind: { type: 'string' },
  'tls-ca': { type: 'string' },
}

const SOURCE_HELP = `Source (exactly one):
  --dir DIR               a directory of the native file store (createFileStore)
  --redis URL             a Redis server: redis://host:port/db or rediss://... (TLS)
  --cluster HOST:PORT,... seed nodes of a Redis Cluster (redis:// or rediss:// URLs also accepted)
  --postgres URL          a PostgreSQL store (createPostgresStore): postgres://user@host:port/db
Source options:
  --pg-schema S, --pg-table T  the PostgreSQL store's schema and table (default: search_path, awaitly_kv)
  --prefix P              snapshot key prefix (default '${SNAPSHOT_DEFAULT_PREFIX}', createSnapshotStore's)
  --state-prefix P        resume-state key prefix (default '${STATE_DEFAULT_PREFIX}', createStatePersistence's)
  --kind snapshot|state   read only snapshots or only 1.0 resume states (default both)
  --tls-ca FILE           PEM CA certificate for rediss:// servers with a private CA`

/** `{ source, close, describe }` for the parsed options; throws UsageError on bad options. */
function openStore(values) {
  const given = ['dir', 'redis', 'cluster', 'postgres'].filter((k) => values[k] !== undefined)
  if (given.length === 0) throw new UsageError('no source: give --dir DIR, --redis URL, --cluster HOST:PORT,... or --postgres URL')
  if (given.length > 1) throw new UsageError(`give one source, not ${given.map((g) => `--${g}`).join(' and ')}`)
  let kinds = ['snapshot', 'state']
  if (values.kind !== undefined) {
    if (values.kind !== 'snapshot' && values.kind !== 'state')
      throw new UsageError(`--kind must be snapshot or state, got ${JSON.stringify(values.kind)}`)
    kinds = [values.kind]
  }
  const prefix = values.prefix ?? SNAPSHOT_DEFAULT_PREFIX
  const statePrefix = values['state-prefix'] ?? STATE_DEFAULT_PREFIX
  let tls
  if (values['tls-ca'] !== undefined) {
    try {
      tls = { ca: fs.readFileSync(values['tls-ca'], 'utf8') }
    } catch (e) {
      throw new CliError(`cannot read --tls-ca ${values['tls-ca']}: ${e.message}`)
    }
  }
  let store
  let describe
  if (values.dir !== undefined) {
    const dir = values.dir
    let st
    try {
      st = fs.statSync(dir)
    } catch {
      throw new CliError(`no such directory: ${dir}`)
    }
    if (!st.isDirectory()) throw new CliError(`not a directory: ${dir}`)
    store = createFileStore({ directory: dir })
    describe = `directory ${dir}`
  } else if (values.redis !== undefined) {
    const url = values.redis
    if (!/^rediss?:\/\/|^unix:\/\//.test(url))
      throw new UsageError(`--redis must be a redis://, rediss:// or unix:// URL, got ${JSON.stringify(url)}`)
    store = createRedisStore({ url, tls })
    describe = `Redis ${redactUrl(url)}`
  } else if (values.postgres !== undefined) {
    store = createPostgresStore({
      connectionString: values.postgres,
      ...(values['pg-schema'] !== undefined ? { schema: values['pg-schema'] } : {}),
      ...(values['pg-table'] !== undefined ? { table: values['pg-table'] } : {}),
    })
    describe = `PostgreSQL ${values.postgres.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')}${values['pg-schema'] ? ` schema ${values['pg-schema']}` : ''}`
  } else {
    const nodes = /** @type {string} */ (values.cluster)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((n) => (/^rediss?:\/\//.test(n) ? n : `redis://${n}`))
    if (nodes.length === 0) throw new UsageError('--cluster needs host:port[,host:port...]')
    store = createRedisStore({ cluster: { nodes }, tls })
    describe = `Redis Cluster ${nodes.map(redactUrl).join(',')}`
  }
  const source = openSource(store, { prefix, statePrefix, kinds })
  return {
    source,
    describe,
    close: async () => {
      if ('close' in store && typeof store.close === 'function') await store.close()
    },
  }
}

/** A URL with its password hidden. */
function redactUrl(url) {
  return url.replace(/^(rediss?:\/\/[^:@/]*:)[^@/]*@/, '$1***@')
}

module.exports = { SOURCE_OPTIONS, SOURCE_HELP, openStore }
