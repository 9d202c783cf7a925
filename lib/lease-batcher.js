'use strict'
// Run-lease calls (acquire / release / renew) made in one tick go to Rust as
// ONE native call, like the Redis store's Batcher: one pipeline on Redis
// (src/redis/lease.rs), one lock-holding pass on files (src/file/lease.rs).
// `send(kinds, ttls, scopes, keys, tokens)` returns the native promise of
// `{ codes, tokens, errors }`: a LeaseOutcome per op (No / Yes, or Error with
// errors[i]) and the tokens of the taken leases, in order, 32 characters each.

const { binding, fromNative } = require('./native.js')

// defined in Rust (src/redis/codes.rs)
const { Acquire: LEASE_ACQUIRE, Release: LEASE_RELEASE, Renew: LEASE_RENEW } = binding.LeaseKind
const { No: LEASE_NO, Yes: LEASE_YES } = binding.LeaseOutcome
const TOKEN_LEN = 32

function settleAll(waiters, e) {
  for (let i = 1; i < waiters.length; i += 2) {
    const each = new Error(e.message)
    each.code = e.code
    waiters[i](each)
  }
}

class LeaseBatcher {
  constructor(send, maxBatch) {
    this.send = send
    this.maxBatch = maxBatch
    this.reset()
    this.scheduled = false
    this.flush = this.flush.bind(this)
  }

  reset() {
    this.kinds = []
    this.ttls = []
    this.scopes = []
    this.keys = []
    this.tokens = []
    this.waiters = []
  }

  /** Resolves to the new token or null (acquire), or a boolean (release, renew). */
  push(kind, scope, key, token, ttl) {
    return new Promise((resolve, reject) => {
      this.kinds.push(kind)
      this.ttls.push(ttl)
      this.scopes.push(scope)
      this.keys.push(key)
      this.tokens.push(token)
      this.waiters.push(resolve, reject)
      if (this.kinds.length >= this.maxBatch) this.flush()
      else if (!this.scheduled) {
        this.scheduled = true
        process.nextTick(this.flush)
      }
    })
  }

  acquire(scope, key, ttl) {
    return this.push(LEASE_ACQUIRE, scope, key, '', ttl)
  }

  release(scope, key, token) {
    return this.push(LEASE_RELEASE, scope, key, token, 0)
  }

  renew(scope, key, token, ttl) {
    return this.push(LEASE_RENEW, scope, key, token, ttl)
  }

  flush() {
    this.scheduled = false
    if (this.kinds.length === 0) return
    const { kinds, ttls, scopes, keys, tokens, waiters } = this
    this.reset()
    let p
    try {
      p = this.send(Uint8Array.from(kinds), Uint32Array.from(ttls), scopes, keys, tokens)
    } catch (e) {
      settleAll(waiters, fromNative(e))
      return
    }
    p.then(
      ({ codes, tokens: taken, errors }) => {
        let pos = 0
        for (let i = 0; i < codes.length; i++) {
          if (codes[i] !== LEASE_YES && codes[i] !== LEASE_NO) {
            waiters[2 * i + 1](fromNative(new Error(errors?.[i] ?? '[ERR_INTERNAL] missing error')))
          } else if (kinds[i] !== LEASE_ACQUIRE) waiters[2 * i](codes[i] === LEASE_YES)
          else if (codes[i] === LEASE_YES) {
            waiters[2 * i](taken.slice(pos, pos + TOKEN_LEN))
            pos += TOKEN_LEN
          } else waiters[2 * i](null)
        }
      },
      (e) => settleAll(waiters, fromNative(e)),
    )
  }
}

module.exports = { LeaseBatcher }
