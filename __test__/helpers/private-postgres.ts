// Starts a private PostgreSQL cluster (initdb + pg_ctl from Debian's
// postgresql package) on a spare loopback port, in a temporary directory, for
// tests that must restart the server or change its TLS settings. Never touches
// the shared server on 5432. initdb refuses to run as root: as root, every
// command runs as the `postgres` user (runuser). Stopped (immediate) and
// removed by `stop()`.
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sparePort } from './redis-server'

export interface PrivatePostgres {
  port: number
  /** The directory of the cluster's files (certificates go here too). */
  dir: string
  /** Unix socket directory: the admin connects there (trust, never TLS). */
  socketDir: string
  /** Stop (`fast`: sessions are terminated) and start again; resolves once it accepts connections. The event loop runs meanwhile. */
  restart(mode?: 'fast' | 'immediate'): Promise<void>
  stop(): void
}

export interface PrivatePostgresOptions {
  /** pg_hba.conf lines for 127.0.0.1 (the unix socket always trusts). */
  hba: string[]
  /** Extra server settings (`-c name=value`). */
  settings?: Record<string, string>
  /** Runs after initdb, before the first start: `dir` as in {@link PrivatePostgres}, `data` the data directory. */
  prepare?: (dir: string, data: string) => void
}

function bin(name: string): string {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) throw new Error(`no PostgreSQL server binaries under ${root} (Debian's postgresql package)`)
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a))
  for (const v of versions) {
    const p = join(root, v, 'bin', name)
    if (existsSync(p)) return p
  }
  throw new Error(`${name} not found under ${root}/*/bin`)
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0

/** Run a server binary (as `postgres` when we are root). */
function run(name: string, args: string[]): void {
  const cmd = bin(name)
  if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdio: 'pipe' })
  else execFileSync(cmd, args, { stdio: 'pipe' })
}

/** The same, without blocking the event loop (calls stay in flight meanwhile). */
async function runAsync(name: string, args: string[]): Promise<void> {
  const cmd = bin(name)
  if (asRoot) await promisify(execFile)('runuser', ['-u', 'postgres', '--', cmd, ...args])
  else await promisify(execFile)(cmd, args)
}

/** Make `path` the server's (owner postgres when we are root). */
export function giveToServer(path: string, mode?: number): void {
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
    chownSync(path, uid, gid)
  }
  if (mode !== undefined) chmodSync(path, mode)
}

export async function startPrivatePostgres(opts: PrivatePostgresOptions): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'pg-private-'))
  giveToServer(dir, 0o700)
  const data = join(dir, 'data')
  const socketDir = dir
  const port = await sparePort()
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'])
  const hba = join(data, 'pg_hba.conf')
  writeFileSync(hba, ['local all all trust', ...opts.hba.map((l) => l.trim())].join('\n') + '\n')
  giveToServer(hba, 0o600)
  const settings = {
    port: String(port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: socketDir,
    fsync: 'off',
    ...opts.settings,
  }
  const o = Object.entries(settings)
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(' ')
  opts.prepare?.(dir, data)
  const log = join(dir, 'server.log')
  const startArgs = ['-D', data, '-o', o, '-l', log, '-w', '-t', '60', 'start']
  run('pg_ctl', startArgs)
  let running = true
  return {
    port,
    dir,
    socketDir,
    async restart(mode = 'fast') {
      await runAsync('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop'])
      await runAsync('pg_ctl', startArgs)
    },
    stop() {
      if (running) {
        running = false
        try {
          run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
        } catch {
          // already down
        }
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
