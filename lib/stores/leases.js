'use strict'
// Run leases (the snapshot store's WorkflowLock) on the file store, and the
// fenced snapshot writes (set / delete only if the caller still holds the
// lease): the calls of one tick go to Rust as ONE native call through a
// tick batcher, one lock-holding pass (src/file/lease.rs). (The server
// stores' leases, Redis and PostgreSQL, are ops of their data batch:
// lib/stores/kv-batch.js pushLease.) Every op names the lease of snapshot `id`
// under `prefix`. `send(kinds, ttls, prefixes, ids, tokens, values)` returns
// the native promise of `{ codes, tokens, errors }`: a LEASE outcome per op
// (YES / NO, else an error in errors[i]: ERR_LEASE_LOST for a fenced-off
// write) and the tokens of the taken leases, in order, TOKEN_LEN characters
// each.

const { fromNative } = require('../internal/binding.js')
const { LEASE } = require('../internal/codes.js')
const { TickBatcher, settleAll } = require('../internal/tick-batcher.js')

/**
 * @typedef {{ kinds: number[], ttls: number[], prefixes: string[], ids: string[], tokens: string[], values: string[], waiters: Function[] }} LeaseBatch
 * @typedef {import('../../binding').LeaseOut} LeaseOut
 * @typedef {(kinds: Uint8Array, ttls: Uint32Array, prefixes: string[], ids: string[], tokens: string[], values: string[]) => Promise<LeaseOut>} SendLeases
 */

/** @returns {LeaseBatch} */
const empty = () => ({ kinds: [], ttls: [], prefixes: [], ids: [], tokens: [], values: [], waiters: [] })

/**
 * @param {LeaseBatch} batch
 * @param {LeaseOut} out
 */
function settleLeases({ kinds, waiters }, { codes, tokens, errors }) {
  let pos = 0
  for (let i = 0; i < codes.length; i++) {
    if (codes[i] !== LEASE.YES && codes[i] !== LEASE.NO) {
      waiters[2 * i + 1](fromNative(new Error(errors?.[i] ?? '[ERR_INTERNAL] missing error')))
    } else if (kinds[i] === LEASE.FENCED_SET || kinds[i] === LEASE.FENCED_DELETE) {
      if (codes[i] === LEASE.YES) waiters[2 * i]()
      else waiters[2 * i + 1](fromNative(new Error('[ERR_INTERNAL] a fenced write answered neither written nor lost')))
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
    const { kinds, ttls, prefixes, ids, tokens, values, waiters } = batch
    send(Uint8Array.from(kinds), Uint32Array.from(ttls), prefixes, ids, tokens, values).then(
      (out) => settleLeases(batch, out),
      (e) => settleAll(waiters, fromNative(e)),
    )
  })
  /**
   * Resolves to the new token or null (acquire), a boolean (release, renew), or undefined (a fenced write).
   * @param {number} kind
   * @param {string} prefix
   * @param {string} id
   * @param {string} token
   * @param {number} ttl
   * @param {string} value
   */
  const push = (kind, prefix, id, token, ttl, value) => {
    const b = batcher.current()
    b.kinds.push(kind)
    b.ttls.push(ttl)
    b.prefixes.push(prefix)
    b.ids.push(id)
    b.tokens.push(token)
    b.values.push(value)
    return batcher.wait(b)
  }
  return {
    /** @type {(prefix: string, id: string, ttlMs: number) => Promise<string | null>} */
    acquire: (prefix, id, ttlMs) => push(LEASE.ACQUIRE, prefix, id, '', ttlMs, ''),
    /** @type {(prefix: string, id: string, token: string) => Promise<boolean>} */
    release: (prefix, id, token) => push(LEASE.RELEASE, prefix, id, token, 0, ''),
    /** @type {(prefix: string, id: string, token: string, ttlMs: number) => Promise<boolean>} */
    renew: (prefix, id, token, ttlMs) => push(LEASE.RENEW, prefix, id, token, ttlMs, ''),
    /** Write snapshot `prefix + id` if `token` still holds its lease, else reject ERR_LEASE_LOST. @type {(prefix: string, id: string, token: string, value: string) => Promise<void>} */
    fencedSet: (prefix, id, token, value) => push(LEASE.FENCED_SET, prefix, id, token, 0, value),
    /** Delete snapshot `prefix + id` if `token` still holds its lease, else reject ERR_LEASE_LOST. @type {(prefix: string, id: string, token: string) => Promise<void>} */
    fencedDelete: (prefix, id, token) => push(LEASE.FENCED_DELETE, prefix, id, token, 0, ''),
    flush: batcher.flush,
  }
}

module.exports = { leaseCalls }
