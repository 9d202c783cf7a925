'use strict'
// Run leases (the snapshot store's WorkflowLock) on our native stores: the
// acquire / release / renew calls of one tick go to Rust as ONE native call
// through a tick batcher: one pipeline on Redis (src/redis/lease.rs), one
// lock-holding pass on files (src/file/lease.rs). `send(kinds, ttls, scopes,
// keys, tokens)` returns the native promise of `{ codes, tokens, errors }`: a
// LEASE outcome per op (YES / NO, else an error in errors[i]) and the tokens
// of the taken leases, in order, TOKEN_LEN characters each.

const { fromNative } = require('../internal/binding.js')
const { LEASE } = require('../internal/codes.js')
const { TickBatcher, settleAll } = require('../internal/tick-batcher.js')

/**
 * @typedef {{ kinds: number[], ttls: number[], scopes: string[], keys: string[], tokens: string[], waiters: Function[] }} LeaseBatch
 * @typedef {import('../../binding').LeaseOut} LeaseOut
 * @typedef {(kinds: Uint8Array, ttls: Uint32Array, scopes: string[], keys: string[], tokens: string[]) => Promise<LeaseOut>} SendLeases
 */

/** @returns {LeaseBatch} */
const empty = () => ({ kinds: [], ttls: [], scopes: [], keys: [], tokens: [], waiters: [] })

/**
 * @param {LeaseBatch} batch
 * @param {LeaseOut} out
 */
function settleLeases({ kinds, waiters }, { codes, tokens, errors }) {
  let pos = 0
  for (let i = 0; i < codes.length; i++) {
    if (codes[i] !== LEASE.YES && codes[i] !== LEASE.NO) {
      waiters[2 * i + 1](fromNative(new Error(errors?.[i] ?? '[ERR_INTERNAL] missing error')))
    } else if (kinds[i] !== LEASE.ACQUIRE) waiters[2 * i](codes[i] === LEASE.YES)
    else if (codes[i] === LEASE.YES) {
      waiters[2 * i](tokens.slice(pos, pos + LEASE.TOKEN_LEN))
      pos += LEASE.TOKEN_LEN
    } else waiters[2 * i](null)
  }
}

/**
 * The lease calls of a native store.
 * @param {SendLeases} send
 * @param {number} maxBatch
 */
function leaseCalls(send, maxBatch) {
  /** @type {TickBatcher<LeaseBatch>} */
  const batcher = new TickBatcher(maxBatch, empty, (batch) => {
    const { kinds, ttls, scopes, keys, tokens, waiters } = batch
    send(Uint8Array.from(kinds), Uint32Array.from(ttls), scopes, keys, tokens).then(
      (out) => settleLeases(batch, out),
      (e) => settleAll(waiters, fromNative(e)),
    )
  })
  /**
   * Resolves to the new token or null (acquire), or a boolean (release, renew).
   * @param {number} kind
   * @param {string} scope
   * @param {string} key
   * @param {string} token
   * @param {number} ttl
   */
  const push = (kind, scope, key, token, ttl) => {
    const b = batcher.current()
    b.kinds.push(kind)
    b.ttls.push(ttl)
    b.scopes.push(scope)
    b.keys.push(key)
    b.tokens.push(token)
    return batcher.wait(b)
  }
  return {
    /** @type {(scope: string, key: string, ttlMs: number) => Promise<string | null>} */
    acquire: (scope, key, ttlMs) => push(LEASE.ACQUIRE, scope, key, '', ttlMs),
    /** @type {(scope: string, key: string, token: string) => Promise<boolean>} */
    release: (scope, key, token) => push(LEASE.RELEASE, scope, key, token, 0),
    /** @type {(scope: string, key: string, token: string, ttlMs: number) => Promise<boolean>} */
    renew: (scope, key, token, ttlMs) => push(LEASE.RENEW, scope, key, token, ttlMs),
    flush: batcher.flush,
  }
}

module.exports = { leaseCalls }
