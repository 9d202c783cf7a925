// Redis over TLS suite: the KeyValueStore of createRedisStore on `rediss://`
// (its default transport: the TLS session's records read and written on the
// JS thread; and `transport: 'tokio'`) against npm `redis` 5 and ioredis 5
// over TLS, each with its default options, on a private TLS redis-server
// with a CA made for this run. get/set of 1 KB values at 1, 16 and 256 calls
// in flight, interleaved rounds, medians (as the redis-clients suite).

import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { compareClients, fill } from './redis-clients.mjs'

const require = createRequire(import.meta.url)
const { createRedisStore } = require('../index.js')
const { createClient } = require('redis')
const IORedis = require('ioredis')

async function sparePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** A private TLS redis-server (a CA and a certificate for localhost made here); stop() ends it. */
async function startTlsRedis() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-tls-'))
  const ossl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=bench-ca', '-keyout', 'ca.key', '-out', 'ca.pem')
  ossl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'srv.key', '-out', 'srv.csr')
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n')
  ossl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext.cnf', '-out', 'srv.pem')
  const port = await sparePort()
  const child = spawn(
    'redis-server',
    ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--tls-cert-file', path.join(dir, 'srv.pem'), '--tls-key-file', path.join(dir, 'srv.key'),
      '--tls-ca-cert-file', path.join(dir, 'ca.pem'), '--tls-auth-clients', 'no'],
    { stdio: 'ignore' },
  )
  const stop = () => {
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => (s.destroy(), r(true)))
      s.once('error', () => r(false))
    })
    if (up) return { port, ca: readFileSync(path.join(dir, 'ca.pem'), 'utf8'), stop }
    await new Promise((r) => setTimeout(r, 25))
  }
  stop()
  throw new Error('TLS redis-server did not start')
}

export async function run() {
  const server = await startTlsRedis()
  const url = `rediss://localhost:${server.port}`
  const native = createRedisStore({ url, tls: { ca: server.ca } })
  const tokio = createRedisStore({ url, tls: { ca: server.ca }, transport: 'tokio' })
  const npm = createClient({ url, socket: { tls: true, ca: server.ca } })
  const io = new IORedis({ host: 'localhost', port: server.port, tls: { ca: server.ca, servername: 'localhost' } })
  try {
    await Promise.all([native.ping(), tokio.ping(), npm.connect(), io.ping()])
    if (native.transport !== 'direct') throw new Error(`benchmark: the TLS store runs on ${native.transport}`)
    await fill(native)
    const clients = [
      ['native', { get: (k) => native.get(k), set: (k, v) => native.set(k, v) }],
      ['native (tokio transport)', { get: (k) => tokio.get(k), set: (k, v) => tokio.set(k, v) }],
      ['npm redis 5', { get: (k) => npm.get(k), set: (k, v) => npm.set(k, v) }],
      ['ioredis 5', { get: (k) => io.get(k), set: (k, v) => io.set(k, v) }],
    ]
    const { rows, groups, cpuRows } = await compareClients(clients, ['npm redis 5', 'ioredis 5'])
    return [
      {
        title: 'Redis over TLS: KeyValueStore get/set 1 KB, ops/s (private TLS redis-server, same run)',
        columns: ['op', 'in flight', ...clients.map(([name]) => name), 'native / best peer'],
        rows,
        chart: {
          file: 'redis-tls.svg',
          title: 'Redis over TLS, get/set 1 KB: ops/s by client (same run, median of interleaved rounds)',
          groups,
          series: clients.map(([name]) => name),
          unit: '/s',
        },
        notes: ['rediss:// with a CA made for this run; TLS 1.3 as negotiated by each client. Goals: ≥ 1.0× the best peer at 1 in flight, ≥ 1.2× at 16, ≥ 1.5× at 256.'],
      },
      {
        title: 'Redis over TLS: JS-thread CPU per op, µs (main event loop active time / ops)',
        columns: ['op', 'in flight', ...clients.map(([name]) => name), 'native / least peer'],
        rows: cpuRows,
        notes: ['The tokio transport does its TLS and I/O on other threads (not counted here). Goal: native at or below the best peer.'],
      },
    ]
  } finally {
    await Promise.allSettled([native.close(), tokio.close(), npm.quit(), io.quit()])
    server.stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./harness.mjs')
  for (const t of await run()) console.log(renderTable(t))
}
