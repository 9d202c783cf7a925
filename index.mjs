// Public ESM entry: named exports over the CommonJS build (one implementation,
// one native addon instance). __test__/smoke.test.ts checks this list matches
// index.js exactly.
import cjs from './index.js'

export const {
  ok,
  err,
  serializeCause,
  deserializeCause,
  serializeResult,
  deserializeResult,
  serializeMeta,
  deserializeMeta,
  serializeEntry,
  deserializeEntry,
  serializeState,
  deserializeState,
  stringifyState,
  parseState,
  createMemoryCache,
  createFileCache,
  createFileStore,
  createKVCache,
  createRedisStore,
  createPostgresStore,
  createStatePersistence,
  createHydratingCache,
  createSnapshotStore,
  escapeGlob,
  globMatch,
  isPersistenceError,
} = cjs

export default cjs
