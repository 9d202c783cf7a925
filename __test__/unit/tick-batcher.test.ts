// The tick batcher (lib/internal/tick-batcher.js) that every native server
// store sends its calls through: how a tick's calls are cut into batches.
import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { TickBatcher } = require('../../lib/internal/tick-batcher.js')

type B = { ops: number[]; text: string; waiters: Function[] }

/** A batcher whose batches settle at once; the sizes it sent, tick by tick. */
function recorder(maxBatch: number, options?: Record<string, unknown>) {
  const sent: number[] = []
  const batcher = new TickBatcher(
    maxBatch,
    (): B => ({ ops: [], text: '', waiters: [] }),
    (batch: B) => {
      sent.push(batch.ops.length)
      batch.ops.forEach((op, i) => batch.waiters[2 * i](op))
    },
    options,
  )
  const call = (op: number, text = '') => {
    const b: B = batcher.current()
    b.ops.push(op)
    b.text += text
    return batcher.wait(b)
  }
  return { sent, call }
}

describe('TickBatcher', () => {
  it('cuts a tick into batches of maxBatch calls by default, and each call gets its own answer', async () => {
    const { sent, call } = recorder(32)
    const got = await Promise.all(Array.from({ length: 100 }, (_, i) => call(i)))
    expect(sent).toEqual([32, 32, 32, 4])
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => i))
  })

  it('a small first batch grows twice per batch up to maxBatch; `first` is asked once per tick', async () => {
    let asked = 0
    let first = 4
    const { sent, call } = recorder(32, {
      first: () => {
        asked++
        return first
      },
    })
    await Promise.all(Array.from({ length: 100 }, (_, i) => call(i)))
    expect(sent).toEqual([4, 8, 16, 32, 32, 8])
    expect(asked).toBe(1)
    // the next tick asks again: now the caller says full batches
    first = 32
    await Promise.all(Array.from({ length: 40 }, (_, i) => call(i)))
    expect(sent.slice(6)).toEqual([32, 8])
    expect(asked).toBe(2)
    // out-of-range answers are held to 1..maxBatch
    first = 0
    await Promise.all([call(1), call(2)])
    expect(sent.slice(8)).toEqual([1, 1])
  })

  it('`full` ends a batch before its count (a text size, say)', async () => {
    const { sent, call } = recorder(32, { full: (b: B) => b.text.length >= 10 })
    await Promise.all(Array.from({ length: 7 }, (_, i) => call(i, 'abcd')))
    expect(sent).toEqual([3, 3, 1])
  })
})
