import { createRequire } from 'node:module'
import { spawn } from 'node:child_process'
const require = createRequire(import.meta.url)
const { createRedisStore, createKVCache, ok } = require('../index.js')
const c = spawn('redis-server', ['--port','6395','--save','','--appendonly','no'],{stdio:'ignore'})
await new Promise(r=>setTimeout(r,300))
const payload = ok({ data: 'x'.repeat(1000), n: 1 })
async function loops(n, op, ms) { const end = performance.now()+ms; let cnt=0, seq=0; await Promise.all(Array.from({length:n}, async()=>{ while(performance.now()<end){ await op(seq++%10000); cnt++ } })); return cnt/(ms/1000) }
const s = createRedisStore({ url: 'redis://127.0.0.1:6395' })
const cache = createKVCache({ store: s, prefix: 'b:' })
console.log('set', Math.round(await loops(256, i=>cache.setAsync('k'+i, payload), 3000)))
console.log('get', Math.round(await loops(256, i=>cache.getAsync('k'+i), 3000)))
await s.close(); c.kill(); process.exit(0)
