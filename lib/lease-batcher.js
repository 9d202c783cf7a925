'use strict'
// Run-lease calls (acquire / release / renew, and the fenced snapshot
// writes: set / delete if the lease is still the caller's) made in one tick
// go to Rust as ONE native call, like the Redis store's Batcher: one pipeline
// on Redis (src/redis/lease.rs), one lock-holding pass on files
// (src/file/lease.rs). Every op names the lease of snapshot `id` under
// `prefix`. `send(kinds, ttls, prefixes, ids, tokens, values)` returns the
// native promise of `{ codes, tokens, errors }`: a code per op (0 false / not
// taken, 1 true / taken / written, else an error in errors[i]: ERR_LEASE_LOST
// for a fenced-off write) and the tokens of the taken leases, in order, 32
// characters each.

const { fromNative } = require('./native.js')

const LEASE_ACQUIRE = 0
const LEASE_RELEASE = 1
const LEASE_RENEW = 2
const FENCED_SET = 3
const FENCED_DELETE = 4
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
    this.prefixes = []
    this.ids = []
    this.tokens = []
    this.values = []
    this.waiters = []
  }

  /** Resolves to the new token or null (acquire), a boolean (release, renew), or undefined (a fenced write). */
  push(kind, prefix, id, token, ttl, value) {
    return new Promise((resolve, reject) => {
      this.kinds.push(kind)
      this.ttls.push(ttl)
      this.prefixes.push(prefix)
      this.ids.push(id)
      this.tokens.push(token)
      this.values.push(value)
      this.waiters.push(resolve, reject)
      if (this.kinds.length >= this.maxBatch) this.flush()
      else if (!this.scheduled) {
        this.scheduled = true
        process.nextTick(this.flush)
      }
    })
  }

  acquire(prefix, id, ttl) {
    return this.push(LEASE_ACQUIRE, prefix, id, '', ttl, '')
  }

  release(prefix, id, token) {
    return this.push(LEASE_RELEASE, prefix, id, token, 0, '')
  }

  renew(prefix, id, token, ttl) {
    return this.push(LEASE_RENEW, prefix, id, token, ttl, '')
  }

  /** Write the snapshot `prefix + id` if `token` still holds its lease; else reject ERR_LEASE_LOST. */
  fencedSet(prefix, id, token, value) {
    return this.push(FENCED_SET, prefix, id, token, 0, value)
  }

  /** Delete the snapshot `prefix + id` if `token` still holds its lease; else reject ERR_LEASE_LOST. */
  fencedDelete(prefix, id, token) {
    return this.push(FENCED_DELETE, prefix, id, token, 0, '')
  }

  flush() {
    this.scheduled = false
    if (this.kinds.length === 0) return
    const { kinds, ttls, prefixes, ids, tokens, values, waiters } = this
    this.reset()
    let p
    try {
      p = this.send(Uint8Array.from(kinds), Uint32Array.from(ttls), prefixes, ids, tokens, values)
    } catch (e) {
      settleAll(waiters, fromNative(e))
      return
    }
    p.then(
      ({ codes, tokens: taken, errors }) => {
        let pos = 0
        for (let i = 0; i < codes.length; i++) {
          if (codes[i] > 1) waiters[2 * i + 1](fromNative(new Error(errors?.[i] ?? '[ERR_INTERNAL] missing error')))
          else if (kinds[i] >= FENCED_SET) {
            if (codes[i] === 1) waiters[2 * i]()
            else waiters[2 * i + 1](fromNative(new Error('[ERR_INTERNAL] a fenced write answered neither written nor lost')))
          } else if (kinds[i] !== LEASE_ACQUIRE) waiters[2 * i](codes[i] === 1)
          else if (codes[i] === 1) {
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
