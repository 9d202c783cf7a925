import { createRequire } from 'node:module'
import { execFileSync } from 'node:child_process'
import { defineStoreCompliance } from './helpers/store-compliance'
import { startPrivateRedis, withTransport, type PrivateRedis } from './helpers/redis-server'

const require = createRequire(import.meta.url)
const { createRedisStore } = require('../index.js')

// the shared server (own prefix, cleaned up)
defineStoreCompliance('native-redis', () => createRedisStore({ url: 'redis://127.0.0.1:6379' }), {
  close: (s: any) => s.close(),
})

// the same suite on the tokio transport (what TLS and clusters use)
defineStoreCompliance(
  'native-redis-tokio',
  () => createRedisStore(withTransport('tokio', { url: 'redis://127.0.0.1:6379' })),
  { close: (s: any) => s.close() },
)

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

// A user restricted by ACL to its key prefixes (as on managed Redis): every
// key a KV cache, a state persistence and clearAsync touch must lie inside
// the prefix given (owner markers included). SCAN needs no key permission.
// Keys outside (an older build's registry key) are written by the default user.
let aclServer: PrivateRedis
let admin: any
defineStoreCompliance(
  'native-redis-acl-user',
  async () => {
    aclServer = await startPrivateRedis()
    const acl = ['ACL', 'SETUSER', 'u', 'on', '>pw', 'resetkeys', '~cmp:*', '~workflow:*', 'resetchannels', '+@all', '-@dangerous']
    execFileSync('redis-cli', ['-p', String(aclServer.port), ...acl])
    admin = createRedisStore({ url: aclServer.url })
    const user = createRedisStore({ url: `redis://u:pw@127.0.0.1:${aclServer.port}` })
    // the restriction is real: a key outside the prefixes is refused
    await user.set('outside:1', 'x').then(
      () => {
        throw new Error('the ACL user could write outside its prefixes')
      },
      (e: any) => {
        if (!/NOPERM/.test(String(e && e.message))) throw e
      },
    )
    return user
  },
  {
    isolated: true,
    admin: () => admin,
    close: async (s: any) => {
      await s.close()
      await admin.close()
      await aclServer.kill()
    },
  },
)
