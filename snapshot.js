'use strict'
// `awaitly-persistence-native/snapshot` (CommonJS): every runtime export of
// awaitly 1.35's `awaitly/persistence`, under the same names. README
// "The /snapshot subpath" lists where results deliberately differ.

module.exports = {
  ...require('./lib/format/snapshot.js'),
  createMemoryCache: require('./lib/caches/memory.js').createMemoryCache,
  // Ours, beyond awaitly's list: the SnapshotStore (+ WorkflowLock) for durable.run.
  createSnapshotStore: require('./lib/persistence/snapshots.js').createSnapshotStore,
}
