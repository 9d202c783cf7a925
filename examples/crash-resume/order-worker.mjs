// The worker: one attempt at an order workflow. It persists the workflow's
// resume state after every step and, when started again for the same order,
// resumes from that state. run.mjs starts it, kills it (SIGKILL) partway, and
// starts it again. Run on its own: DEMO_ORDER_ID=o1 DEMO_DIR=/tmp/x node order-worker.mjs
import { createWorkflow, createResumeStateCollector } from 'awaitly/workflow'
import { ok } from 'awaitly'
import { openPersistence, createMemoryCache } from './store.mjs'

const orderId = process.env.DEMO_ORDER_ID ?? 'ord-1042'
const attempt = process.env.DEMO_ATTEMPT ?? '1'
// How long the slow step (create-shipment) takes, in milliseconds.
const slowMs = Number(process.env.DEMO_SLOW_MS ?? 1500)

const say = (line) => process.stdout.write(`  [run ${attempt}] ${line}\n`)
const tell = (message) => process.send?.(message) // to run.mjs, when it is our parent
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const id = (prefix) => `${prefix}_${Math.random().toString(36).slice(2, 10)}`

// The order's steps, each a Result-returning dependency (as awaitly expects).
// Ids are random, so a value shown for a skipped step proves it came from the
// saved state and was not computed again.
const deps = {
  validateOrder: async (orderId) => {
    await sleep(150)
    return ok({ orderId, items: 3, total: 84.97 })
  },
  reserveInventory: async (order) => {
    await sleep(150)
    return ok({ reservation: id('res'), items: order.items })
  },
  chargePayment: async (order) => {
    await sleep(150)
    return ok({ charge: id('ch'), amount: order.total })
  },
  createShipment: async (order) => {
    await sleep(slowMs)
    return ok({ shipment: id('shp'), carrier: 'DHL', orderId: order.orderId })
  },
  sendConfirmation: async (order, shipment) => {
    await sleep(150)
    return ok({ email: `confirmation for ${order.orderId}, tracking ${shipment.shipment}` })
  },
}

const STEPS = ['validate-order', 'reserve-inventory', 'charge-payment', 'create-shipment', 'send-confirmation']

const { persistence, describe, close } = await openPersistence()
const saved = await persistence.load(orderId)
if (saved) {
  say(`found saved state for order ${orderId} in ${describe}: ${saved.steps.size} of ${STEPS.length} steps done`)
} else {
  say(`no saved state for order ${orderId}: starting fresh`)
}

// The state to persist: what was saved before plus every step completed now.
// (The collector sees only the steps that run in this process; resumed steps
// are cache hits and emit no step_complete.)
const steps = new Map(saved ? saved.steps : [])
const collector = createResumeStateCollector()
let saving = Promise.resolve()
const onEvent = (event) => {
  collector.handleEvent(event)
  if (event.type === 'step_complete') {
    const entry = collector.getResumeState().steps.get(event.stepKey)
    if (entry) steps.set(event.stepKey, entry)
    const snapshot = { steps: new Map(steps) }
    saving = saving.then(() => persistence.save(orderId, snapshot, { orderId, savedBy: `run ${attempt}` }))
  }
}

// cache: the in-process step cache (native LRU); resumeState seeds it with the
// saved steps, which awaitly then serves without running them.
const cache = createMemoryCache({ maxSize: 1000 })
const workflow = createWorkflow('order', deps, { cache, resumeState: saved, onEvent })

let ranCount = 0
let skippedCount = 0
// One keyed step: runs `fn` unless the saved state already holds its result,
// then waits until the state including it is saved, and prints one line.
async function orderStep(step, key, fn, show) {
  const n = STEPS.indexOf(key) + 1
  let ran = false
  const value = await step(
    key,
    () => {
      ran = true
      tell({ type: 'step-started', key })
      if (key === 'create-shipment') say(`step ${n}/${STEPS.length} ${key.padEnd(18)} running (takes ${slowMs} ms)…`)
      return fn()
    },
    { key },
  )
  await saving
  if (ran) ranCount++
  else skippedCount++
  const mark = ran ? 'ran' : 'skipped (from saved state)'
  say(`step ${n}/${STEPS.length} ${key.padEnd(18)} ${mark.padEnd(27)} ${show(value)}`)
  tell({ type: 'step-done', key, ran })
  return value
}

const result = await workflow.run(async ({ step, deps }) => {
  const order = await orderStep(step, 'validate-order', () => deps.validateOrder(orderId), (o) => `${o.items} items, $${o.total}`)
  await orderStep(step, 'reserve-inventory', () => deps.reserveInventory(order), (r) => `reservation ${r.reservation}`)
  await orderStep(step, 'charge-payment', () => deps.chargePayment(order), (c) => `charged $${c.amount} (${c.charge})`)
  const shipment = await orderStep(step, 'create-shipment', () => deps.createShipment(order), (s) => `shipment ${s.shipment} via ${s.carrier}`)
  await orderStep(step, 'send-confirmation', () => deps.sendConfirmation(order, shipment), (m) => m.email)
  return { orderId, shipment: shipment.shipment }
})

if (!result.ok) {
  say(`order failed: ${String(result.error)}; state kept for the next attempt`)
  await close()
  process.exit(1)
}
await persistence.delete(orderId)
say(`order ${orderId} complete (${ranCount} steps ran, ${skippedCount} skipped); saved state deleted`)
tell({ type: 'complete', ran: ranCount, skipped: skippedCount })
await close()
