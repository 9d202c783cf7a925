// A PostgreSQL KeyValueStore (the spec's example, with the `pg` package),
// fixed:
//  - keys(pattern) translates the Redis glob properly: `*` -> `%`, `?` -> `_`,
//    `\x` -> the literal x, and the literal `%`, `_` and `\` are escaped, so
//    `LIKE ... ESCAPE '\'` matches exactly what Redis would. (The spec's
//    `pattern.replace('*', '%')` replaced only the first `*` and let `_`/`%`
//    in prefixes match any character.) Character classes (`[a-z]`) have no
//    LIKE equivalent: the query narrows by the literal part and the rows are
//    filtered with the same glob matcher as the native stores (globMatch).
//  - expired rows are invisible to get/exists/keys/delete (the spec's `get`
//    returned expired values), and are purged by `purgeExpired()`.
//  - ttl is in seconds; absent or 0 means no expiry.
//
// Usage:
//   import pg from 'pg'
//   import { createPostgresStore } from './examples/stores/postgres-store.mjs'
//   const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
//   const store = createPostgresStore({ pool, table: 'workflow_cache' })
//   await store.ensureTable()
//   const cache = createKVCache({ store, prefix: 'wf:' })

import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { globMatch } = require('../../index.js')

/**
 * Translate a Redis-style glob into a LIKE pattern (ESCAPE '\').
 * Returns `{ like, exact }`; `exact` is false when the glob has a character
 * class, in which case `like` covers a superset and rows must be filtered.
 */
export function globToLike(glob) {
  let like = ''
  let exact = true
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]
    if (c === '\\' && i + 1 < glob.length) {
      like += likeLiteral(glob[++i])
    } else if (c === '*') {
      like += '%'
    } else if (c === '?') {
      like += '_'
    } else if (c === '[' && glob.indexOf(']', i + 2) !== -1) {
      // a class: match anything from here, filter afterwards
      like += '%'
      exact = false
      break
    } else {
      like += likeLiteral(c)
    }
  }
  return { like, exact }
}

function likeLiteral(c) {
  return c === '%' || c === '_' || c === '\\' ? `\\${c}` : c
}

export function createPostgresStore({ pool, table = 'workflow_cache' }) {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(table)) throw new TypeError(`invalid table name: ${table}`)
  const live = '(expires_at IS NULL OR expires_at > NOW())'
  return {
    async ensureTable() {
      await pool.query(
        `CREATE TABLE IF NOT EXISTS ${table} (
           key TEXT PRIMARY KEY COLLATE "C",
           value TEXT NOT NULL,
           expires_at TIMESTAMPTZ
         )`,
      )
    },

    async dropTable() {
      await pool.query(`DROP TABLE IF EXISTS ${table}`)
    },

    async get(key) {
      const { rows } = await pool.query(`SELECT value FROM ${table} WHERE key = $1 AND ${live}`, [key])
      return rows[0]?.value ?? null
    },

    async set(key, value, opts) {
      const ttl = opts?.ttl
      if (ttl !== undefined && ttl !== null && (typeof ttl !== 'number' || !(ttl >= 0))) {
        throw new TypeError(`set: ttl must be a non-negative number of seconds, got ${String(ttl)}`)
      }
      const expiresAt = ttl ? new Date(Date.now() + ttl * 1000) : null
      await pool.query(
        `INSERT INTO ${table} (key, value, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
        [key, value, expiresAt],
      )
    },

    async delete(key) {
      const { rows } = await pool.query(`DELETE FROM ${table} WHERE key = $1 RETURNING ${live} AS live`, [key])
      return rows.length > 0 && rows[0].live === true
    },

    async exists(key) {
      const { rows } = await pool.query(`SELECT 1 FROM ${table} WHERE key = $1 AND ${live}`, [key])
      return rows.length > 0
    },

    async keys(pattern) {
      const { like, exact } = globToLike(pattern)
      const { rows } = await pool.query(`SELECT key FROM ${table} WHERE key LIKE $1 ESCAPE '\\' AND ${live}`, [like])
      const keys = rows.map((r) => r.key)
      return exact ? keys : keys.filter((k) => globMatch(pattern, k))
    },

    /** Delete expired rows (run periodically; reads already ignore them). */
    async purgeExpired() {
      const { rowCount } = await pool.query(`DELETE FROM ${table} WHERE expires_at IS NOT NULL AND expires_at <= NOW()`)
      return rowCount ?? 0
    },
  }
}
