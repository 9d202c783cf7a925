// The awaitly end-to-end suite (awaitly-suite.ts) with every Redis store on
// the shared server. Needs Redis on 127.0.0.1:6379 (the test fails if it is
// not there).
import { defineAwaitlyE2E } from './awaitly-suite'

defineAwaitlyE2E(() => ({ url: 'redis://127.0.0.1:6379' }))
