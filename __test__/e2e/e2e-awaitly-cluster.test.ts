// The awaitly end-to-end tests (e2e-awaitly.test.ts) with every Redis store
// on a local Redis Cluster (3 primaries, 3 replicas) instead of one server.
import { afterAll, beforeAll } from 'vitest'
import { createRequire } from 'node:module'
import { startCluster, type LocalCluster } from '../helpers/redis-cluster'

const require = createRequire(import.meta.url)
const { createRedisStore } = require('../../index.js')

let cluster: LocalCluster
beforeAll(async () => {
  cluster = await startCluster()
}, 60_000)
// registered first, so it runs after the e2e file's own afterAll (cleanup)
afterAll(async () => {
  await cluster?.stop()
})

;(globalThis as any).__awaitlyE2ERedisStore = () => createRedisStore({ cluster: { nodes: cluster.nodes } })
await import('./e2e-awaitly.test')
