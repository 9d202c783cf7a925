// A local Redis Cluster for tests and benchmarks: 3 primaries + 3 replicas
// (by default) of `redis-server --cluster-enabled yes` on spare loopback
// ports (data and cluster bus), in a temp dir, short cluster-node-timeout so
// a failover takes seconds. Created with `redis-cli --cluster create`; ready
// when every node reports cluster_state:ok and all 16384 slots. Stopped by
// PID (SIGKILL), temp dir removed. Never touches the shared server on 6379.
// With `tls: true`, every node speaks TLS only (clients, the cluster bus and
// replication), with a certificate (SAN 127.0.0.1) from a CA made for the run.
import { spawn, execFile, execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** @returns {Promise<number>} a free loopback port */
export function sparePort() {
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Run redis-cli; resolves its stdout (rejects on a non-zero exit). */
export function cli(port, ...args) {
  return cliWith([], port, ...args)
}

/** redis-cli with `flags` first (TLS ones). */
function cliWith(flags, port, ...args) {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', [...flags, '-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 30000 }, (err, out, errOut) => {
      if (err) reject(new Error(`redis-cli -p ${port} ${args.join(' ')}: ${err.message} ${errOut}`))
      else resolve(out)
    })
  })
}

/** Parse CLUSTER NODES: [{ id, port, flags, master, slots }] */
export function parseNodes(text) {
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const f = line.split(' ')
      return {
        id: f[0],
        port: Number(f[1].split('@')[0].split(':')[1]),
        flags: f[2].split(','),
        master: f[3],
        slots: f.slice(8),
      }
    })
}

/**
 * A CA and a server certificate it signed (SAN IP:127.0.0.1, DNS:localhost)
 * in `dir`: ca.pem, srv.pem, srv.key.
 */
function makeCertificates(dir) {
  const ossl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=cluster-test-ca', '-keyout', 'ca.key', '-out', 'ca.pem')
  ossl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'srv.key', '-out', 'srv.csr')
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  ossl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext.cnf', '-out', 'srv.pem')
}

/**
 * Start a cluster. `options.primaries` (3), `options.replicas` per primary
 * (1), `options.nodeTimeout` ms (1000), `options.tls` (false).
 */
export async function startCluster(options = {}) {
  const primaries = options.primaries ?? 3
  const replicas = options.replicas ?? 1
  const nodeTimeout = options.nodeTimeout ?? 1000
  const tls = options.tls ?? false
  const dir = mkdtempSync(join(tmpdir(), 'awaitly-cluster-'))
  if (tls) makeCertificates(dir)
  const tlsFlags = tls ? ['--tls', '--cacert', join(dir, 'ca.pem')] : []
  const cli = (port, ...args) => cliWith(tlsFlags, port, ...args)
  /** @type {Map<number, import('node:child_process').ChildProcess>} */
  const children = new Map()
  const ports = []
  const used = new Set()
  const spare = async () => {
    for (;;) {
      const p = await sparePort()
      if (!used.has(p)) {
        used.add(p)
        return p
      }
    }
  }
  const killAll = () => {
    for (const c of children.values()) {
      try {
        c.kill('SIGKILL')
      } catch {}
    }
  }
  process.once('exit', killAll)

  const startNode = async (port, busPort) => {
    const c = spawn(
      'redis-server',
      [
        ...(tls
          ? [
              '--port', '0',
              '--tls-port', String(port),
              '--tls-cluster', 'yes',
              '--tls-replication', 'yes',
              '--tls-cert-file', join(dir, 'srv.pem'),
              '--tls-key-file', join(dir, 'srv.key'),
              '--tls-ca-cert-file', join(dir, 'ca.pem'),
              '--tls-auth-clients', 'no',
            ]
          : ['--port', String(port)]),
        '--cluster-port', String(busPort),
        '--bind', '127.0.0.1',
        '--protected-mode', 'no',
        '--cluster-enabled', 'yes',
        '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-node-timeout', String(nodeTimeout),
        '--dir', dir,
        '--save', '',
        '--appendonly', 'no',
      ],
      { stdio: 'ignore' },
    )
    children.set(port, c)
    c.once('exit', () => {
      if (children.get(port) === c) children.delete(port)
    })
    for (let i = 0; i < 200; i++) {
      if (c.exitCode !== null) throw new Error(`redis-server on port ${port} exited at start`)
      try {
        if ((await cli(port, 'PING')).trim() === 'PONG') return
      } catch {}
      await sleep(25)
    }
    throw new Error(`redis-server on port ${port} did not start`)
  }

  const self = {
    dir,
    ports,
    /** seed URLs, one per node (rediss:// with tls) */
    get nodes() {
      return ports.map((p) => `${tls ? 'rediss' : 'redis'}://127.0.0.1:${p}`)
    },
    /** with tls: the CA that signed every node's certificate (PEM) */
    ca: tls ? readFileSync(join(dir, 'ca.pem'), 'utf8') : undefined,
    cli,
    /** CLUSTER NODES as seen from `port` (default: the first live node). */
    async topology(port) {
      const from = port ?? ports.find((p) => children.has(p))
      return parseNodes(await cli(from, 'CLUSTER', 'NODES'))
    },
    /** Ports of the current primaries that own slots (as seen from a live node). */
    async primaryPorts() {
      const t = await self.topology()
      return t.filter((n) => n.flags.includes('master') && !n.flags.includes('fail') && n.slots.length > 0).map((n) => n.port)
    },
    /** SIGKILL the node on `port`; resolves when it is gone. */
    async kill(port) {
      const c = children.get(port)
      if (!c) return
      const gone = new Promise((r) => c.once('exit', r))
      c.kill('SIGKILL')
      await gone
    },
    /** Every live node says cluster_state:ok and sees all slots covered by live primaries. */
    async waitHealthy(timeoutMs = 30000) {
      const end = Date.now() + timeoutMs
      for (;;) {
        let ok = true
        for (const p of ports) {
          if (!children.has(p)) continue
          try {
            const info = await cli(p, 'CLUSTER', 'INFO')
            if (!/cluster_state:ok/.test(info) || !/cluster_slots_ok:16384/.test(info)) ok = false
          } catch {
            ok = false
          }
          if (!ok) break
        }
        if (ok) return
        if (Date.now() > end) throw new Error('cluster did not become healthy')
        await sleep(100)
      }
    },
    /** Stop every node (SIGKILL) and remove the temp dir. */
    async stop() {
      const all = [...children.values()].map((c) => new Promise((r) => (c.exitCode !== null ? r(undefined) : c.once('exit', r))))
      killAll()
      await Promise.all(all)
      process.removeListener('exit', killAll)
      rmSync(dir, { recursive: true, force: true })
    },
  }

  try {
    const n = primaries * (1 + replicas)
    for (let i = 0; i < n; i++) {
      const port = await spare()
      const bus = await spare()
      ports.push(port)
      await startNode(port, bus)
    }
    await cli(
      ports[0],
      '--cluster', 'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas', String(replicas),
      '--cluster-yes',
    )
    await self.waitHealthy()
    // every replica attached and in sync (so failover and WAIT have someone to use)
    const end = Date.now() + 30000
    for (;;) {
      let online = 0
      for (const p of await self.primaryPorts()) {
        const info = await cli(p, 'INFO', 'replication')
        online += (info.match(/^slave\d+:.*state=online/gm) ?? []).length
      }
      if (online === primaries * replicas) break
      if (Date.now() > end) throw new Error('replicas did not come in sync')
      await sleep(100)
    }
  } catch (e) {
    await self.stop()
    throw e
  }
  return self
}

/**
 * After a failover: resolves once 200 sets under `prefix` (over many slots,
 * the stores taking turns) all succeed, trying every 100 ms; fails the test
 * if that takes longer than 10 s after `since` (performance.now()).
 */
export async function untilWritesSucceed(stores, prefix, since) {
  const { expect } = await import('vitest')
  for (;;) {
    const probe = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => stores[i % stores.length].set(`${prefix}probe${i}`, 'x')))
    if (probe.every((r) => r.status === 'fulfilled')) return
    expect(performance.now() - since).toBeLessThan(10_000)
    await sleep(100)
  }
}

/**
 * The calls made across a failover ({ ok, ms, code }): some failed (the
 * kill was felt), each with a store code, none later than both timeouts
 * allow, most succeeded.
 */
export async function expectFailoverOutcomes(outcomes, timeoutMs) {
  const { expect } = await import('vitest')
  const failed = outcomes.filter((o) => !o.ok)
  expect(failed.length).toBeGreaterThan(0)
  for (const f of failed) expect(['ERR_STORE_UNAVAILABLE', 'ERR_STORE_TIMEOUT']).toContain(f.code)
  // a loop, not Math.max(...): a fast store makes more outcomes than a call's arguments may be
  expect(outcomes.reduce((m, o) => Math.max(m, o.ms), 0)).toBeLessThan(2 * timeoutMs + 1000)
  expect(outcomes.filter((o) => o.ok).length).toBeGreaterThan(failed.length)
}
