'use strict'
// createHydratingCache: a StepCache that loads a run's persisted state into a
// memory cache once. Concurrent hydrate() calls share one load (the JS module
// set its flag after the await, so two concurrent calls loaded twice); a
// failed load is not remembered, so hydrate() can be retried.

const { invalidArg: typeError } = require('./native.js')
const { delegateStepCache } = require('./memory-cache.js')

function createHydratingCache(memoryCache, persistence, runId) {
  for (const m of ['get', 'set', 'has', 'delete', 'clear']) {
    if (!memoryCache || typeof memoryCache[m] !== 'function') {
      throw typeError(`createHydratingCache: memory.${m} must be a function`)
    }
  }
  if (!persistence || typeof persistence.load !== 'function') {
    throw typeError('createHydratingCache: persistence.load must be a function')
  }
  let loading = null

  return {
    hydrate() {
      if (!loading) {
        loading = (async () => {
          const state = await persistence.load(runId)
          if (state) {
            for (const [key, entry] of state.steps) memoryCache.set(key, entry.result)
          }
        })()
        loading.catch(() => {
          loading = null
        })
      }
      return loading
    },
    ...delegateStepCache(memoryCache),
  }
}

module.exports = { createHydratingCache }
