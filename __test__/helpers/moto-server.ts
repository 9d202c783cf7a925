// Starts a private moto_server (a local DynamoDB-compatible server; PyPI
// `moto[server]`, installed by .ci/run) on a spare loopback port, for the
// DynamoDB example's tests. Stopped by its PID. Throws, with the server's own
// output, if it cannot start: the tests that need it fail, they never skip.
import { spawn } from 'node:child_process'
import { sparePort } from './redis-server'

export interface MotoServer {
  pid: number
  port: number
  endpoint: string
  /** SIGTERM the server by PID (SIGKILL after 5 s); resolves when it has exited. */
  stop(): Promise<void>
}

export async function startMoto(command = process.env.MOTO_SERVER ?? 'moto_server'): Promise<MotoServer> {
  const port = await sparePort()
  const endpoint = `http://127.0.0.1:${port}`
  const child = spawn(command, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (chunk: Buffer) => {
    if (output.length < 8192) output += chunk.toString('utf8')
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  let exit: string | null = null
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = `exited (code ${code}, signal ${signal})`
      resolve()
    })
    child.once('error', (e) => {
      exit = `could not be run: ${e.message}`
      resolve()
    })
  })
  const fail = (why: string) =>
    new Error(`${command} on 127.0.0.1:${port} ${why} — install it with: pip install 'moto[server]'\n${output}`)

  const deadline = Date.now() + 20_000
  for (;;) {
    if (exit) throw fail(exit)
    try {
      // moto answers its own API; a DynamoDB call is tried by the tests themselves.
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      if (res.ok) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw fail('did not answer within 20 s')
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  const pid = child.pid!
  return {
    pid,
    port,
    endpoint,
    async stop() {
      if (exit) return
      process.kill(pid, 'SIGTERM')
      const timer = setTimeout(() => {
        if (!exit) process.kill(pid, 'SIGKILL')
      }, 5000)
      await exited
      clearTimeout(timer)
    },
  }
}
