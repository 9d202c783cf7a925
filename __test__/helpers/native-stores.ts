// Every native KeyValueStore a durable.run suite covers, for one test file:
// the shared Redis on 127.0.0.1:6379 (keys under a unique prefix, removed
// afterwards), a local Redis Cluster (3 primaries, started for the file and
// stopped by PID), a file store in a temp directory and a PostgreSQL store on
// a schema private to the file (dropped afterwards). Call at the top level
// of a test file; it registers the beforeAll/afterAll that start and clean up.
import { afterAll, beforeAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { startCluster, type LocalCluster } from './redis-cluster'
import { PG, dropSchema, privateSchema } from './postgres'

const require = createRequire(import.meta.url)
const { createRedisStore, createFileStore, createPostgresStore, escapeGlob } = require('../../index.js')

export interface NativeStore {
  name: 'redis' | 'cluster' | 'file' | 'postgres'
  /** A new KeyValueStore on this backend (closed after the file's tests). */
  open(): any
}

export function useNativeStores(tag: string): { stores: NativeStore[]; prefix: string } {
  const prefix = `${tag}:${process.pid}:${Date.now().toString(36)}:`
  let cluster: LocalCluster | undefined
  let dir: string | undefined
  const schema = privateSchema(tag.replace(/[^a-z0-9]/gi, '').toLowerCase())
  const opened: any[] = []
  const track = (s: any) => (opened.push(s), s)

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), `${tag}-`))
    cluster = await startCluster({ replicas: 0 })
  }, 60_000)
  afterAll(async () => {
    for (const s of opened) for (const k of await s.keys(`${escapeGlob(prefix)}*`)) await s.delete(k)
    for (const s of opened) await s.close?.()
    await cluster?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
    await dropSchema(schema)
  })

  const stores: NativeStore[] = [
    { name: 'redis', open: () => track(createRedisStore({ url: 'redis://127.0.0.1:6379' })) },
    { name: 'cluster', open: () => track(createRedisStore({ cluster: { nodes: cluster!.nodes } })) },
    { name: 'file', open: () => track(createFileStore({ directory: dir! })) },
    { name: 'postgres', open: () => track(createPostgresStore({ ...PG, schema })) },
  ]
  return { stores, prefix }
}
