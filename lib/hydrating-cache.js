'use strict'
// (to be written)
module.exports = {}
