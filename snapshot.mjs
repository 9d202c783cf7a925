// `awaitly-persistence-native/snapshot` (ESM): named exports over the
// CommonJS build, so both share one set of classes (an error thrown through
// one is `instanceof` the class imported through the other).
// __test__/snapshot-exports-diff.test.ts checks this list matches snapshot.js.
import cjs from './snapshot.js'

export const {
  SnapshotFormatError,
  SnapshotMismatchError,
  SnapshotDecodeError,
  looksLikeWorkflowSnapshot,
  validateSnapshot,
  assertValidSnapshot,
  mergeSnapshots,
  serializeError,
  serializeThrown,
  deserializeCauseNew,
  createMemoryCache,
  createSnapshotStore,
} = cjs

export default cjs
