// The shared PostgreSQL server of the tests (127.0.0.1:5432, database `test`,
// trust auth): connection settings, private schema names, and an admin
// client (npm `pg`) to inspect rows and drop a test's schema afterwards.
import pg from 'pg'

export const PG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' }

/** A schema name private to this test file and process (the store creates it on first use). */
export function privateSchema(tag: string): string {
  return `t_${tag}_${process.pid}_${Date.now().toString(36)}`
}

/** A connected admin client; `end()` it. Fails loudly when the server is not there. */
export async function adminClient(): Promise<pg.Client> {
  const c = new pg.Client(PG)
  await c.connect()
  return c
}

export async function dropSchema(...names: string[]): Promise<void> {
  const c = await adminClient()
  try {
    for (const n of names) await c.query(`DROP SCHEMA IF EXISTS "${n}" CASCADE`)
  } finally {
    await c.end()
  }
}
