// The awaitly end-to-end tests (e2e-awaitly.test.ts) with every Redis store
// replaced by a native PostgreSQL store (createPostgresStore) on a schema
// private to this file, dropped afterwards.
import { afterAll } from 'vitest'
import { createRequire } from 'node:module'
import { PG, dropSchema, privateSchema } from './helpers/postgres'

const require = createRequire(import.meta.url)
const { createPostgresStore } = require('../index.js')

const schema = privateSchema('e2e')
// registered first, so it runs after the e2e file's own afterAll (cleanup)
afterAll(async () => {
  await dropSchema(schema)
})

;(globalThis as any).__awaitlyE2ERedisStore = () => createPostgresStore({ ...PG, schema })
await import('./e2e-awaitly.test')
