// Where the demo keeps the workflow state: the native file store in DEMO_DIR,
// the native PostgreSQL store when DATABASE_URL is set (table awaitly_kv,
// created on first use; DEMO_PG_SCHEMA picks a schema), or the native Redis
// store when REDIS_URL is set. Shared by run.mjs and
// order-worker.mjs so both look at the same place. (The package imports
// itself by name, as your code would; in this repo Node resolves the name to
// the checkout through package.json "exports".)
import { createFileStore, createRedisStore, createPostgresStore, createStatePersistence, createMemoryCache } from 'awaitly-persistence-native'

export { createMemoryCache }

export async function openPersistence() {
  const prefix = process.env.DEMO_PREFIX ?? 'demo:crash-resume:state:'
  if (process.env.DATABASE_URL) {
    const schema = process.env.DEMO_PG_SCHEMA
    const store = createPostgresStore({ connectionString: process.env.DATABASE_URL, schema })
    return {
      store,
      prefix,
      persistence: createStatePersistence(store, prefix),
      describe: `PostgreSQL ${process.env.DATABASE_URL} (table ${schema ? `${schema}.` : ''}awaitly_kv, prefix ${prefix})`,
      close: () => store.close(),
    }
  }
  if (process.env.REDIS_URL) {
    const store = createRedisStore({ url: process.env.REDIS_URL })
    return {
      store,
      prefix,
      persistence: createStatePersistence(store, prefix),
      describe: `Redis ${process.env.REDIS_URL} (prefix ${prefix})`,
      close: () => store.close(),
    }
  }
  const directory = process.env.DEMO_DIR
  if (!directory) throw new Error('DEMO_DIR is not set (run.mjs sets it; or set DATABASE_URL or REDIS_URL)')
  const store = createFileStore({ directory })
  return {
    store,
    prefix,
    persistence: createStatePersistence(store, prefix),
    describe: `the native file store at ${directory}`,
    close: async () => {},
  }
}

/**
 * The marker key a state persistence writes once inside its prefix (README
 * "Clear isolation": `<prefix>__awaitly:owner:state`, kept by design so that
 * no cache sharing the store ever clears the states). On the native file
 * store it is a hidden file instead, no key of the store.
 */
export const stateOwnerKey = (prefix) => `${prefix}__awaitly:owner:state`
