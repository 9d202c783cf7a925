'use strict'
// `awaitly-persistence-native/snapshot` (CommonJS): every runtime export of
// awaitly 1.35's `awaitly/persistence`, under the same names. README
// "The /snapshot subpath" lists where results deliberately differ.

module.exports = {
  ...require('./lib/snapshot.js'),
  createMemoryCache: require('./lib/memory-cache.js').createMemoryCache,
  // Ours, beyond awaitly's list: the SnapshotStore (+ WorkflowLock) for durable.run.
  createSnapshotStore: require('./lib/snapshot-store.js').createSnapshotStore,
}
