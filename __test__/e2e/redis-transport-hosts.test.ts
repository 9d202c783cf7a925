// The Redis and PostgreSQL stores' transport on each JavaScript host, with the default
// `transport: 'auto'` (README "Stores"): on Node, the JS thread's own socket
// watched by Node's libuv (`store.transport === 'direct'`); on Bun and Deno,
// which export functions under libuv's names that are not libuv (Bun's abort
// the process, Deno's poll handles never fire), the tokio transport
// (`'tokio'`), and the store works. Bun and Deno are the real
// runtimes, from their npm packages (.ci/run installs them in .ci/bun and
// .ci/deno; with HOSTS_REQUIRED=1, as there, a missing one fails).
import { describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { dropSchema } from '../helpers/postgres'

const root = join(__dirname, '..', '..')
const child = join(__dirname, '..', 'fixtures', 'transport-host.cjs')
const hosts = [
  { name: 'Node', argv: [process.execPath, child], transport: 'direct' },
  { name: 'Bun', bin: join(root, '.ci', 'bun', 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun'), args: [], transport: 'tokio' },
  { name: 'Deno', bin: join(root, '.ci', 'deno', 'node_modules', '@deno', 'linux-x64-glibc', 'deno'), args: ['run', '-A', '--unstable-detect-cjs'], transport: 'tokio' },
].map((h) => ('argv' in h ? h : { ...h, argv: existsSync(h.bin) ? [h.bin, ...h.args, child] : null }))

for (const h of hosts) {
  if (!h.argv && process.env.HOSTS_REQUIRED === '1') throw new Error(`${h.name} is not installed (${(h as any).bin}); .ci/run installs it`)
}

describe.each(hosts.filter((h) => h.argv))('createRedisStore() and createPostgresStore() on $name', ({ name, argv, transport }) => {
  it(`use the ${transport} transport and work`, async () => {
    const key = `transport-host:${process.pid}:${transport}:${Math.random().toString(36).slice(2)}`
    const schema = `host_${name.toLowerCase()}_${process.pid}_${Date.now().toString(36)}`
    try {
      const out = await new Promise<string>((resolve, reject) =>
        execFile(argv![0], [...argv!.slice(1), key, schema], { cwd: __dirname, encoding: 'utf8', timeout: 20_000 }, (error, stdout, stderr) =>
          error ? reject(new Error(`${argv![0]} exited ${error.code ?? error.signal}: ${stderr}`)) : resolve(stdout),
        ),
      )
      expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ transport, value: 'through', postgres: { transport, value: 'through' } })
    } finally {
      await dropSchema(schema)
    }
  }, 30_000)
})
