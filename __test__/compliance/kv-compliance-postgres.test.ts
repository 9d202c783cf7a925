import pg from 'pg'
import { defineStoreCompliance } from '../helpers/store-compliance'
// @ts-ignore -- plain ESM example
import { createPostgresStore, globToLike } from '../../examples/stores/postgres-store.mjs'
import { describe, expect, it } from 'vitest'

const table = `kv_compliance_${process.pid}`
let pool: pg.Pool

defineStoreCompliance(
  'postgres-example',
  async () => {
    pool = new pg.Pool({ host: '127.0.0.1', port: 5432, database: 'test', user: 'postgres', max: 4 })
    const store = createPostgresStore({ pool, table })
    await store.ensureTable()
    return store
  },
  {
    isolated: true, // its own table
    close: async (s: any) => {
      await s.dropTable()
      await pool.end()
    },
  },
)

describe('postgres example: glob to LIKE', () => {
  it('escapes % _ \\ and translates * ? and escapes', () => {
    expect(globToLike('wf:*')).toEqual({ like: 'wf:%', exact: true })
    expect(globToLike('a_b%c\\\\d?*')).toEqual({ like: 'a\\_b\\%c\\\\d_%', exact: true })
    expect(globToLike('x\\*y*')).toEqual({ like: 'x*y%', exact: true })
    expect(globToLike('k[ab]1')).toEqual({ like: 'k%', exact: false })
  })
})
