'use strict'
// createHydratingCache: a StepCache that loads a run's persisted state into a
// memory cache once. Concurrent hydrate() calls share one load (the JS module
// set its flag after the await, so two concurrent calls loaded twice); a
// failed load is not remembered, so hydrate() can be retried. What the load
// returns is checked whole before any entry is set (loadedSteps).

const { invalidArg, invalidDocument } = require('../internal/errors.js')
const { describe } = require('../internal/validate.js')
const { delegateStepCache } = require('./memory.js')
const { isResult } = require('../format/serialize.js').internal

/**
 * The [key, result] pairs of what `persistence.load(runId)` returned, checked
 * before any is set: a ResumeState (`{ steps }`, steps a Map, or any iterable
 * of [key, entry] pairs, of string keys and `{ result, meta? }` entries whose
 * result is a Result). Anything else is a TypeError with code
 * ERR_INVALID_DOCUMENT (a loaded thing that is not a state), naming the run
 * and the problem, instead of V8's "state.steps is not iterable".
 */
function loadedSteps(runId, state) {
  const bad = (what, expected, got) =>
    invalidDocument(
      `hydrate: persistence.load(${JSON.stringify(runId)}) did not return a ResumeState: ${what} must be ${expected}, got ${got}`,
    )
  if (typeof state !== 'object') throw bad('the state', 'an object like { steps: Map }', describe(state))
  const steps = state.steps
  if (steps === null || typeof steps !== 'object' || typeof steps[Symbol.iterator] !== 'function') {
    throw bad('steps', 'a Map', describe(steps))
  }
  const pairs = []
  for (const item of steps) {
    if (item === null || typeof item !== 'object') throw bad('each step', 'a [key, entry] pair', describe(item))
    const [key, entry] = item
    if (typeof key !== 'string') throw bad('a step key', 'a string', describe(key))
    const where = `steps.get(${JSON.stringify(key)})`
    if (entry === null || typeof entry !== 'object') throw bad(where, 'an entry { result, meta? }', describe(entry))
    if (!isResult(entry.result)) throw bad(`${where}.result`, 'a Result', describe(entry.result))
    pairs.push(key, entry.result)
  }
  return pairs
}

function createHydratingCache(memoryCache, persistence, runId) {
  for (const m of ['get', 'set', 'has', 'delete', 'clear']) {
    if (!memoryCache || typeof memoryCache[m] !== 'function') {
      throw invalidArg(`createHydratingCache: memory.${m} must be a function`)
    }
  }
  if (!persistence || typeof persistence.load !== 'function') {
    throw invalidArg('createHydratingCache: persistence.load must be a function')
  }
  let loading = null

  return {
    hydrate() {
      if (!loading) {
        loading = (async () => {
          const state = await persistence.load(runId)
          if (state === undefined || state === null) return // nothing saved
          const pairs = loadedSteps(runId, state)
          for (let i = 0; i < pairs.length; i += 2) memoryCache.set(pairs[i], pairs[i + 1])
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
