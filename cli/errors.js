'use strict'
// The inspector's two failures: a usage error (exit 2: the command line is
// wrong) and a run error (exit 1: the store, the id, the network). Both are
// printed as one line naming the problem, never with a stack trace.

class UsageError extends Error {
  constructor(message) {
    super(message)
    this.name = 'UsageError'
    this.exitCode = 2
  }
}

class CliError extends Error {
  constructor(message, code) {
    super(message)
    this.name = 'CliError'
    this.exitCode = 1
    if (code) this.code = code
  }
}

module.exports = { UsageError, CliError }
