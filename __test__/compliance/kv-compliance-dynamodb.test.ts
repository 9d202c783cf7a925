// The DynamoDB example (examples/stores/dynamodb-store.mjs) against a real
// local DynamoDB-compatible server: a private moto_server on a spare port,
// started here and stopped by PID afterwards. No server, no pass: if
// moto_server cannot start, every test here fails.
import {
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { defineStoreCompliance } from '../helpers/store-compliance'
import { startMoto, type MotoServer } from '../helpers/moto-server'
// @ts-ignore -- plain ESM example
import { createDynamoDBStore, globLiteralPrefix } from '../../examples/stores/dynamodb-store.mjs'

let moto: MotoServer
let client: DynamoDBClient

const clientFor = (endpoint: string) =>
  new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    // moto accepts any credentials; these are placeholders, not secrets
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  })

beforeAll(async () => {
  moto = await startMoto()
  client = clientFor(moto.endpoint)
}, 30_000)

afterAll(async () => {
  client?.destroy()
  if (!moto) return
  await moto.stop()
  // stopped by its PID: the process is gone
  expect(() => process.kill(moto.pid, 0)).toThrow()
})

defineStoreCompliance(
  'dynamodb-example',
  async () => {
    const store = createDynamoDBStore({ client, tableName: `kv-compliance-${process.pid}` })
    await store.ensureTable()
    return store
  },
  {
    isolated: true, // its own table
    close: async (s: any) => {
      await s.dropTable()
    },
  },
)

describe('dynamodb example: beyond the compliance suite', () => {
  const tableName = `kv-extra-${process.pid}`
  let store: any

  beforeAll(async () => {
    store = createDynamoDBStore({ client, tableName })
    await store.ensureTable()
  })

  afterAll(async () => {
    await store?.dropTable()
    const { TableNames } = await client.send(new ListTablesCommand({}))
    expect(TableNames).not.toContain(tableName)
  })

  it('ensureTable is idempotent and enables DynamoDB TTL on `ttl`', async () => {
    await store.ensureTable()
    const { TimeToLiveDescription } = await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }))
    expect(TimeToLiveDescription).toMatchObject({ AttributeName: 'ttl', TimeToLiveStatus: 'ENABLED' })
  })

  it('writes ttl as epoch seconds (rounded up) for DynamoDB and the exact expiry in ms', async () => {
    const before = Date.now()
    await store.set('ttl:attr', 'v', { ttl: 60 })
    const after = Date.now()
    const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: 'ttl:attr' } } }))
    const exp = Number(Item!.expiresAtMs.N)
    expect(exp).toBeGreaterThanOrEqual(before + 60_000)
    expect(exp).toBeLessThanOrEqual(after + 60_000)
    expect(Number(Item!.ttl.N)).toBe(Math.ceil(exp / 1000))
    await store.set('ttl:none', 'v')
    const none = await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: 'ttl:none' } } }))
    expect(Object.keys(none.Item!).sort()).toEqual(['pk', 'value'])
    expect(await store.delete('ttl:attr')).toBe(true)
    expect(await store.delete('ttl:none')).toBe(true)
  })

  it('an expired item DynamoDB has not deleted yet is invisible, and delete of it reports false', async () => {
    const past = Date.now() - 5_000
    await client.send(
      new PutItemCommand({
        TableName: tableName,
        Item: {
          pk: { S: 'late:1' },
          value: { S: 'stale' },
          ttl: { N: String(Math.ceil(past / 1000)) },
          expiresAtMs: { N: String(past) },
        },
      }),
    )
    // written by the spec's example: only `ttl`, whole seconds
    await client.send(
      new PutItemCommand({
        TableName: tableName,
        Item: { pk: { S: 'late:spec-old' }, value: { S: 'stale' }, ttl: { N: String(Math.floor(past / 1000)) } },
      }),
    )
    await client.send(
      new PutItemCommand({
        TableName: tableName,
        Item: { pk: { S: 'late:spec-live' }, value: { S: 'fresh' }, ttl: { N: String(Math.floor(Date.now() / 1000) + 600) } },
      }),
    )
    expect(await store.get('late:1')).toBeNull()
    expect(await store.exists('late:1')).toBe(false)
    expect(await store.get('late:spec-old')).toBeNull()
    expect(await store.get('late:spec-live')).toBe('fresh')
    expect(await store.exists('late:spec-live')).toBe(true)
    expect(await store.keys('late:*')).toEqual(['late:spec-live'])
    expect(await store.delete('late:1')).toBe(false)
    expect(await store.delete('late:spec-old')).toBe(false)
    expect(await store.delete('late:spec-live')).toBe(true)
    // the expired items were removed all the same
    const { Items } = await client.send(new ScanCommand({ TableName: tableName, ConsistentRead: true }))
    expect(Items!.map((i) => i.pk.S).filter((k) => k!.startsWith('late:'))).toEqual([])
  })

  it('keys() follows Scan pagination to the last page', async () => {
    const names = Array.from({ length: 25 }, (_, i) => `page:${String(i).padStart(2, '0')}`)
    await Promise.all(names.map((n) => store.set(n, n)))
    await store.set('other:1', 'x')
    let scans = 0
    const counting = {
      send(command: any) {
        if (command instanceof ScanCommand) scans++
        return client.send(command)
      },
    }
    const paged = createDynamoDBStore({ client: counting, tableName, scanPageSize: 4 })
    expect((await paged.keys('page:*')).sort()).toEqual(names)
    // a Scan page of 4 items read holds matches of at most 4: all 26 items were read
    expect(scans).toBeGreaterThanOrEqual(Math.ceil(26 / 4))
    expect((await paged.keys('page:1?')).sort()).toEqual(names.slice(10, 20))
    expect(await paged.keys('*')).toHaveLength(26)
    await Promise.all([...names, 'other:1'].map((n) => store.delete(n)))
    expect(await store.keys('*')).toEqual([])
  })

  it('rejects a bad ttl and bad options with a TypeError', async () => {
    for (const ttl of [-1, Number.NaN, '10', Infinity]) {
      await expect(store.set('bad', 'v', { ttl })).rejects.toThrow(TypeError)
    }
    expect(await store.exists('bad')).toBe(false)
    expect(() => createDynamoDBStore({ tableName })).toThrow(TypeError)
    expect(() => createDynamoDBStore({ client, tableName: 'a/b' })).toThrow(TypeError)
    expect(() => createDynamoDBStore({ client, scanPageSize: 0 })).toThrow(TypeError)
  })

  it('globLiteralPrefix: the text every match starts with', () => {
    expect(globLiteralPrefix('wf:*')).toBe('wf:')
    expect(globLiteralPrefix('a\\*b?c')).toBe('a*b')
    expect(globLiteralPrefix('k[ab]1')).toBe('k')
    expect(globLiteralPrefix('*x')).toBe('')
    expect(globLiteralPrefix('plain')).toBe('plain')
    expect(globLiteralPrefix('end\\')).toBe('end\\')
  })
})
