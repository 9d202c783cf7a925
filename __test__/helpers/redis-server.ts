// Starts a private redis-server on a spare loopback port (no persistence),
// for tests and benchmarks that must stop and restart Redis. Never touches the
// shared server on 6379.
import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'

export async function sparePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

export interface PrivateRedis {
  port: number
  url: string
  /** Start (again) on the same port; resolves when it accepts connections. */
  start(): Promise<void>
  /** SIGKILL the server (connections drop at once); resolves when it is gone. */
  kill(): Promise<void>
}

export async function startPrivateRedis(port?: number): Promise<PrivateRedis> {
  const p = port ?? (await sparePort())
  let child: ChildProcess | null = null
  const self: PrivateRedis = {
    port: p,
    url: `redis://127.0.0.1:${p}`,
    async start() {
      if (child) return
      const c = spawn(
        'redis-server',
        ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'],
        { stdio: 'ignore' },
      )
      child = c
      let exited = false
      c.once('exit', () => {
        exited = true
        if (child === c) child = null
      })
      for (let i = 0; i < 200; i++) {
        if (exited) throw new Error(`redis-server on port ${p} exited at start`)
        if (await canConnect(p)) return
        await new Promise((r) => setTimeout(r, 25))
      }
      throw new Error(`redis-server on port ${p} did not start`)
    },
    async kill() {
      const c = child
      if (!c) return
      child = null
      const gone = new Promise((r) => c.once('exit', r))
      c.kill('SIGKILL')
      await gone
    },
  }
  await self.start()
  return self
}

/**
 * createRedisStore `options` with the transport that gives `transport`:
 * 'direct' (the JS thread's own socket: `transport: 'auto'`, the default,
 * where it is available) or 'tokio' (`transport: 'tokio'`). The store's
 * `transport` property says which one it got.
 */
export function withTransport<T extends object>(
  transport: 'direct' | 'tokio',
  options: T,
): T & { transport: 'auto' | 'tokio' } {
  return { ...options, transport: transport === 'tokio' ? 'tokio' : 'auto' }
}
