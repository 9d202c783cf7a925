import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll } from 'vitest'
import { defineStoreCompliance } from './helpers/store-compliance'
import { createFileStore } from '../index.js'

// The native file store against the same compliance suite as Redis, PostgreSQL
// and the JS Map store. A directory of its own: the store is isolated.
const directory = mkdtempSync(join(tmpdir(), 'awaitly-file-compliance-'))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

defineStoreCompliance('native-file', () => createFileStore({ directory }), { isolated: true })
