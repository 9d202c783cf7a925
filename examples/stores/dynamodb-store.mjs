// A DynamoDB KeyValueStore (the spec's "Database Examples" DynamoDB store,
// completed), on `@aws-sdk/client-dynamodb`. Tested by
// __test__/compliance/kv-compliance-dynamodb.test.ts (the shared compliance suite)
// against a local DynamoDB-compatible server (moto_server).
//
// Table: partition key `pk` (string), as in the spec. Each item is
//   { pk: S key, value: S value, ttl?: N epoch seconds, expiresAtMs?: N epoch ms }
//
// Fixes and additions over the spec's example:
//  - ttl is in seconds (absent or 0 = no expiry; anything else not a
//    non-negative number throws a TypeError). It is written twice: `ttl`, in
//    whole epoch seconds rounded *up*, for DynamoDB's TTL deleter (enable TTL
//    on the attribute `ttl`; `ensureTable()` does), and `expiresAtMs`, exact,
//    which every read checks. DynamoDB deletes expired items late (typically
//    within days, not at the second), so an expired item is invisible to
//    get/exists/keys/delete here until then. Expiry uses this process's clock.
//    Items written by the spec's example (only `ttl`) are read by their `ttl`.
//  - reads are strongly consistent (ConsistentRead), so a state saved is a
//    state loaded; an eventually consistent read could miss a fresh save.
//  - delete reports whether a live item was removed (the spec's returned true).
//  - exists reads only the key and expiry attributes.
//  - keys(pattern) takes a Redis glob: a paginated Scan narrowed server-side by
//    the glob's literal prefix (begins_with), then filtered with our exported
//    globMatch, so it matches exactly what Redis would.
//
// What keys() costs: a Scan reads the *whole table* — every item, at its full
// size — whatever the filter: DynamoDB charges read capacity for all items
// read (strongly consistent: 1 read unit per 4 KB; a page stops at 1 MB read),
// and FilterExpression / ProjectionExpression only cut what is sent back. So
// keys(), and with it `createStatePersistence(store).list()` and
// `createKVCache(...).clearAsync()`, cost O(size of the table), not O(matches).
// That is fine for a table of workflow state that stays small, or for rare
// listing and clearing. When the table is big or listing is frequent, change
// the key design instead: partition key = the prefix (e.g. `workflow:state:`),
// sort key = the rest, and Query the prefix's partition (begins_with on the
// sort key for a longer prefix) — that reads only the matching items; or keep
// `pk` and add a global secondary index (KEYS_ONLY projection) whose partition
// key is a `bucket` attribute written with every item (its prefix) and whose
// sort key is `pk`. Both need the store to know where a key's prefix ends,
// which the KeyValueStore interface does not say: that is why this example
// scans.
//
// Limits (DynamoDB's): a key is at most 2048 bytes of UTF-8 and may not be
// empty; an item (key + value + attributes) at most 400 KB, so a very large
// resume state does not fit (PutItem rejects it with a ValidationException).
// Errors are the SDK's own (no `code` of ours).
//
// Usage:
//   import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
//   import { createKVCache, createStatePersistence } from 'awaitly-persistence-native'
//   import { createDynamoDBStore } from './examples/stores/dynamodb-store.mjs'
//   const store = createDynamoDBStore({ client: new DynamoDBClient({}), tableName: 'workflow-cache' })
//   await store.ensureTable() // once: creates the table (on-demand) and enables TTL on `ttl`
//   const cache = createKVCache({ store, prefix: 'wf:' })
//   const states = createStatePersistence(store) // 'workflow:state:'

import {
  CreateTableCommand,
  DeleteItemCommand,
  DeleteTableCommand,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  waitUntilTableNotExists,
} from '@aws-sdk/client-dynamodb'
import { globMatch } from 'awaitly-persistence-native'

// `ttl` and `value` are DynamoDB reserved words: always go through names.
const NAMES = { '#ttl': 'ttl', '#exp': 'expiresAtMs' }
const EXPIRY_PROJECTION = 'pk, #ttl, #exp'

/**
 * The literal text every key matching the Redis glob `pattern` starts with:
 * characters up to the first unescaped `*`, `?` or `[`, with `\x` read as x
 * (a trailing lone `\` is a literal `\`, as Redis reads it).
 */
export function globLiteralPrefix(pattern) {
  let out = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '*' || c === '?' || c === '[') break
    if (c === '\\' && i + 1 < pattern.length) out += pattern[++i]
    else out += c
  }
  return out
}

/**
 * @param {{ client: import('@aws-sdk/client-dynamodb').DynamoDBClient, tableName?: string, scanPageSize?: number }} options
 *   client: a DynamoDBClient (region, credentials, endpoint are its business);
 *   tableName: default 'workflow-cache';
 *   scanPageSize: items read per Scan page (DynamoDB's `Limit`), default none
 *   (a page then ends at 1 MB read).
 */
export function createDynamoDBStore({ client, tableName = 'workflow-cache', scanPageSize } = {}) {
  if (!client || typeof client.send !== 'function') throw new TypeError('createDynamoDBStore: client must be a DynamoDBClient')
  if (typeof tableName !== 'string' || !/^[A-Za-z0-9_.-]{3,255}$/.test(tableName)) {
    throw new TypeError(`createDynamoDBStore: invalid tableName: ${String(tableName)}`)
  }
  if (scanPageSize !== undefined && !(Number.isInteger(scanPageSize) && scanPageSize > 0)) {
    throw new TypeError(`createDynamoDBStore: scanPageSize must be a positive integer, got ${String(scanPageSize)}`)
  }

  /** Is this item (or projection of one) there and not expired? */
  function live(item, nowMs = Date.now()) {
    if (!item) return false
    if (item.expiresAtMs?.N !== undefined) return Number(item.expiresAtMs.N) > nowMs
    if (item.ttl?.N !== undefined) return Number(item.ttl.N) * 1000 > nowMs
    return true
  }

  const key = (k) => ({ pk: { S: k } })

  return {
    tableName,

    async get(k) {
      const { Item } = await client.send(
        new GetItemCommand({ TableName: tableName, Key: key(k), ConsistentRead: true }),
      )
      return live(Item) ? (Item.value?.S ?? null) : null
    },

    async set(k, value, opts) {
      const ttl = opts?.ttl
      if (ttl !== undefined && ttl !== null && (typeof ttl !== 'number' || !(ttl >= 0) || ttl === Infinity)) {
        throw new TypeError(`set: ttl must be a non-negative number of seconds, got ${String(ttl)}`)
      }
      const item = { pk: { S: k }, value: { S: value } }
      if (ttl) {
        const expiresAtMs = Date.now() + Math.round(ttl * 1000)
        item.expiresAtMs = { N: String(expiresAtMs) }
        item.ttl = { N: String(Math.ceil(expiresAtMs / 1000)) }
      }
      await client.send(new PutItemCommand({ TableName: tableName, Item: item }))
    },

    async delete(k) {
      // ALL_OLD returns the removed item (with its value: the write costs the
      // same either way), from which we tell whether it was still live.
      const { Attributes } = await client.send(
        new DeleteItemCommand({ TableName: tableName, Key: key(k), ReturnValues: 'ALL_OLD' }),
      )
      return live(Attributes)
    },

    async exists(k) {
      const { Item } = await client.send(
        new GetItemCommand({
          TableName: tableName,
          Key: key(k),
          ConsistentRead: true,
          ProjectionExpression: EXPIRY_PROJECTION,
          ExpressionAttributeNames: NAMES,
        }),
      )
      return live(Item)
    },

    async keys(pattern) {
      const literal = globLiteralPrefix(pattern)
      const out = []
      let ExclusiveStartKey
      do {
        const page = await client.send(
          new ScanCommand({
            TableName: tableName,
            ConsistentRead: true,
            ProjectionExpression: EXPIRY_PROJECTION,
            ExpressionAttributeNames: NAMES,
            ...(literal
              ? { FilterExpression: 'begins_with(pk, :prefix)', ExpressionAttributeValues: { ':prefix': { S: literal } } }
              : {}),
            ...(scanPageSize ? { Limit: scanPageSize } : {}),
            ExclusiveStartKey,
          }),
        )
        const now = Date.now()
        for (const item of page.Items ?? []) {
          const k = item.pk?.S
          if (k !== undefined && live(item, now) && globMatch(pattern, k)) out.push(k)
        }
        ExclusiveStartKey = page.LastEvaluatedKey
      } while (ExclusiveStartKey)
      return out
    },

    /**
     * Create the table if it does not exist (on-demand capacity, key `pk`),
     * wait until it is active, and enable DynamoDB TTL on `ttl`.
     */
    async ensureTable({ maxWaitTime = 60 } = {}) {
      try {
        await client.send(
          new CreateTableCommand({
            TableName: tableName,
            AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
            KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
            BillingMode: 'PAY_PER_REQUEST',
          }),
        )
      } catch (e) {
        if (e?.name !== 'ResourceInUseException') throw e // it exists already
      }
      await waitUntilTableExists({ client, maxWaitTime }, { TableName: tableName })
      try {
        await client.send(
          new UpdateTimeToLiveCommand({
            TableName: tableName,
            TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
          }),
        )
      } catch (e) {
        // enabling it twice is a ValidationException ("already enabled")
        if (!(e?.name === 'ValidationException' && /already enabled/i.test(e.message))) throw e
      }
    },

    /** Delete the table and wait until it is gone (tests, teardown). */
    async dropTable({ maxWaitTime = 60 } = {}) {
      try {
        await client.send(new DeleteTableCommand({ TableName: tableName }))
      } catch (e) {
        if (e?.name !== 'ResourceNotFoundException') throw e
      }
      await waitUntilTableNotExists({ client, maxWaitTime }, { TableName: tableName })
    },
  }
}
