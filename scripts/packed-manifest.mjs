// The package.json that goes into the tarball has no `scripts`: in a checkout
// `npm install` / `npm ci` build the addon through `prepare`, but a user
// installing the published package must never be asked to build (the binary
// comes from the platform package), and the other scripts need files that are
// not published (src/, benchmark/, examples/).
//
//   node scripts/packed-manifest.mjs strip    # prepack: back up package.json, drop `scripts`
//   node scripts/packed-manifest.mjs restore  # postpack: put the backup back
//
// npm runs prepack before it reads the manifest to pack (so `prepare` does not
// run during `npm pack` either) and postpack with the scripts it read first.
// If a pack dies in between, package.json stays stripped: `restore` (or git)
// brings it back, and `strip` refuses to run over a leftover backup.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'

const manifest = 'package.json'
const backup = '.package.json.dev'
const action = process.argv[2]

if (action === 'strip') {
  if (existsSync(backup)) {
    console.error(`${backup} exists: a previous pack did not restore package.json; run: node scripts/packed-manifest.mjs restore`)
    process.exit(1)
  }
  const text = readFileSync(manifest, 'utf8')
  const pkg = JSON.parse(text)
  delete pkg.scripts
  writeFileSync(backup, text)
  writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`)
} else if (action === 'restore') {
  if (existsSync(backup)) renameSync(backup, manifest)
} else {
  console.error('usage: node scripts/packed-manifest.mjs strip|restore')
  process.exit(2)
}
