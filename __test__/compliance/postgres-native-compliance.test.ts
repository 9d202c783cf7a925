// The KeyValueStore compliance suite on the native PostgreSQL store
// (createPostgresStore), on a schema private to this file: the store creates
// it on first use, it is dropped afterwards.
import { afterAll } from 'vitest'
import { createRequire } from 'node:module'
import { defineStoreCompliance } from '../helpers/store-compliance'
import { PG, dropSchema, privateSchema } from '../helpers/postgres'

const { createPostgresStore } = createRequire(import.meta.url)('../../index.js')

const schema = privateSchema('cmp')
// registered first, so it runs after the suite's own afterAll (which closes the store)
afterAll(async () => {
  await dropSchema(schema)
})

defineStoreCompliance('native-postgres', () => createPostgresStore({ ...PG, schema }), {
  isolated: true, // its own schema
  close: (s: any) => s.close(),
})
