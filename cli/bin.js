#!/usr/bin/env node
'use strict'
// `npx awaitly-persistence-native <command> <source> [options]`: the
// inspector's entry point. Parses the command line (node:util parseArgs),
// runs one command, exits 0 (ok), 1 (error) or 2 (usage). Errors are one
// line naming the problem; no stack trace.

const { parseArgs } = require('node:util')
const { UsageError } = require('./errors.js')

const NAME = 'awaitly-persistence-native'

function commandTable() {
  const { commands } = require('./commands.js')
  const { serve } = require('./serve/command.js')
  return { ...commands, serve }
}

function mainHelp(table) {
  const width = Math.max(...Object.keys(table).map((k) => k.length))
  return `Usage: npx ${NAME} <command> <source> [options]

Inspect the runs that awaitly's durable.run saved through awaitly-persistence-native
(createSnapshotStore, createStatePersistence): what they are, where they stopped,
who holds their lease, which are stuck.

Commands:
${Object.entries(table)
  .map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`)
  .join('\n')}

Sources: --dir DIR | --redis URL | --cluster HOST:PORT,...  (each with --prefix)
Every command takes --help and --json. Exit codes: 0 ok, 1 error, 2 usage.
Example: npx ${NAME} runs --redis redis://127.0.0.1:6379 --stuck
`
}

function commandHelp(_name, c) {
  const { SOURCE_HELP } = require('./source.js')
  return `Usage: npx ${NAME} ${c.usage}

${c.summary[0].toUpperCase()}${c.summary.slice(1)}.

${SOURCE_HELP}
${c.help}
  --help, -h              this help
`
}

/** stdout/stderr/stdin for the commands; writes honour backpressure. */
function makeIo() {
  let pending = null
  process.stdout.on('error', (e) => {
    // the reader went away (`| head`): stop quietly
    if (e.code === 'EPIPE') process.exit(0)
    throw e
  })
  const out = (text) => {
    if (process.stdout.write(text)) return undefined
    if (!pending) {
      pending = /** @type {Promise<void>} */ (
        new Promise((resolve) =>
          process.stdout.once('drain', () => {
            pending = null
            resolve()
          }),
        )
      )
    }
    return pending
  }
  const err = (text) => {
    process.stderr.write(text)
  }
  let lines = null
  const readLine = () =>
    new Promise((resolve) => {
      if (!lines) {
        lines = require('node:readline').createInterface({ input: process.stdin, terminal: false })
      }
      const onLine = (l) => {
        lines.off('close', onClose)
        lines.close()
        resolve(l)
      }
      const onClose = () => resolve(null)
      lines.once('line', onLine)
      lines.once('close', onClose)
    })
  return { out, err, readLine, errIsTTY: Boolean(process.stderr.isTTY) }
}

function describeError(e) {
  if (e?.code && /^ERR_/.test(e.code) && e.code !== 'ERR_NOT_FOUND') return `${e.code}: ${e.message}`
  return e?.message ? e.message : String(e)
}

async function main(argv) {
  const table = commandTable()
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp(table))
    return name === undefined ? 2 : 0
  }
  const command = Object.hasOwn(table, name) ? table[name] : null
  if (!command) throw new UsageError(`unknown command ${JSON.stringify(name)} (commands: ${Object.keys(table).join(', ')})`)
  let parsed
  try {
    parsed = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true })
  } catch (e) {
    throw new UsageError(e.message.replace(/\. To specify a positional argument.*$/s, ''))
  }
  if (parsed.values.help) {
    process.stdout.write(commandHelp(name, command))
    return 0
  }
  const io = makeIo()
  const { openStore } = require('./source.js')
  /** @type {{ store: ReturnType<typeof openStore> | null }} */
  const opened = { store: null }
  const open = () => {
    opened.store = openStore(parsed.values)
    return opened.store
  }
  try {
    return await command.run(parsed.values, parsed.positionals, io, open)
  } catch (e) {
    if (opened.store) await opened.store.close().catch(() => {})
    e.json = parsed.values.json
    throw e
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (e) => {
    const usage = e instanceof UsageError
    const message = describeError(e)
    if (e?.json) process.stderr.write(`${JSON.stringify({ error: { code: usage ? 'ERR_USAGE' : (e.code ?? 'ERR_INSPECT'), message } })}\n`)
    else process.stderr.write(`${NAME}: ${message}\n${usage ? `Run 'npx ${NAME} --help' or '<command> --help'.\n` : ''}`)
    process.exitCode = usage ? 2 : (e.exitCode ?? 1)
  },
)
