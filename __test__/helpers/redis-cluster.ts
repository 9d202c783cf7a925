// Typed entry to the local Redis Cluster helper (implementation in
// redis-cluster.mjs, shared with benchmark/cluster.mjs).
// @ts-ignore: plain ESM module, typed here
import * as impl from './redis-cluster.mjs'

export interface ClusterNode {
  id: string
  port: number
  flags: string[]
  master: string
  slots: string[]
}

export interface LocalCluster {
  dir: string
  ports: number[]
  /** seed URLs, one per node (rediss:// with tls) */
  readonly nodes: string[]
  /** with tls: the CA that signed every node's certificate (PEM) */
  ca?: string
  cli(port: number, ...args: string[]): Promise<string>
  topology(port?: number): Promise<ClusterNode[]>
  primaryPorts(): Promise<number[]>
  kill(port: number): Promise<void>
  waitHealthy(timeoutMs?: number): Promise<void>
  stop(): Promise<void>
}

export const startCluster: (options?: { primaries?: number; replicas?: number; nodeTimeout?: number; tls?: boolean }) => Promise<LocalCluster> =
  impl.startCluster
export const cli: (port: number, ...args: string[]) => Promise<string> = impl.cli

/** One call's outcome during a failover test. */
export interface Outcome {
  ok: boolean
  ms: number
  code?: string
}

export const untilWritesSucceed: (stores: { set(k: string, v: string): Promise<unknown> }[], prefix: string, since: number) => Promise<void> =
  impl.untilWritesSucceed
export const expectFailoverOutcomes: (outcomes: Outcome[], timeoutMs: number) => Promise<void> = impl.expectFailoverOutcomes
