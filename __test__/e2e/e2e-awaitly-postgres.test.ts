// The awaitly end-to-end suite (awaitly-suite.ts) with every server store a
// native PostgreSQL store (createPostgresStore) on a schema private to this
// file, dropped afterwards.
import { afterAll } from 'vitest'
import { createRequire } from 'node:module'
import { PG, dropSchema, privateSchema } from '../helpers/postgres'
import { defineAwaitlyE2E } from './awaitly-suite'

const { createPostgresStore } = createRequire(import.meta.url)('../../index.js')

const schema = privateSchema('e2e')
// registered first, so it runs after the suite's own afterAll (cleanup)
afterAll(async () => {
  await dropSchema(schema)
})

defineAwaitlyE2E({ name: 'createPostgresStore', open: () => createPostgresStore({ ...PG, schema }) })
