// The awaitly end-to-end suite (awaitly-suite.ts) with every Redis store on a
// local Redis Cluster (3 primaries, 3 replicas): the store's `cluster` option.
import { afterAll, beforeAll } from 'vitest'
import { startCluster, type LocalCluster } from '../helpers/redis-cluster'
import { createRequire } from 'node:module'
import { defineAwaitlyE2E } from './awaitly-suite'

const { createRedisStore } = createRequire(import.meta.url)('../../index.js')

let cluster: LocalCluster
beforeAll(async () => {
  cluster = await startCluster()
}, 60_000)
// registered first, so it runs after the suite's own afterAll (cleanup)
afterAll(async () => {
  await cluster?.stop()
})

defineAwaitlyE2E({ name: 'createRedisStore (cluster)', open: () => createRedisStore({ cluster: { nodes: cluster.nodes } }) })
