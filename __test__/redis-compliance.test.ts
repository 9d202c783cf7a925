import { createRequire } from 'node:module'
import { defineStoreCompliance } from './helpers/store-compliance'
import { startPrivateRedis, type PrivateRedis } from './helpers/redis-server'

const require = createRequire(import.meta.url)
const { createRedisStore } = require('../index.js')

// the shared server (own prefix, cleaned up)
defineStoreCompliance('native-redis', () => createRedisStore({ url: 'redis://127.0.0.1:6379' }), {
  close: (s: any) => s.close(),
})

// a private server, where the JS module's literal default prefixes are safe to use
let server: PrivateRedis
defineStoreCompliance(
  'native-redis-private',
  async () => {
    server = await startPrivateRedis()
    return createRedisStore({ url: server.url })
  },
  {
    isolated: true,
    close: async (s: any) => {
      await s.close()
      await server.kill()
    },
  },
)
