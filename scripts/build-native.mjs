#!/usr/bin/env node
// Builds the addon: fetches MsQuic's sources if needed (scripts/fetch-msquic.mjs), then runs
// cmake-js, which builds MsQuic once into a cache outside the clone (cmake/msquic.cmake) and links
// it into build/Release/node_msquic.node. With --if-missing it does nothing when the addon exists.
// Extra arguments go to cmake-js (e.g. --CDNODE_MSQUIC_SANITIZE=address,undefined).
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const ifMissing = args.includes('--if-missing')
const extra = args.filter(a => a !== '--if-missing')
const addon = join(root, 'build', 'Release', 'node_msquic.node')

if (ifMissing && existsSync(addon)) {
  console.log('node-msquic: addon already built')
  process.exit(0)
}
const started = Date.now()
execFileSync(process.execPath, [join(root, 'scripts', 'fetch-msquic.mjs')], { stdio: 'inherit' })
const require = createRequire(import.meta.url)
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js')
execFileSync(process.execPath, [cmakeJs, 'compile', '--out', 'build', ...extra], { cwd: root, stdio: 'inherit' })
console.log(`node-msquic: addon built in ${((Date.now() - started) / 1000).toFixed(1)} s: ${addon}`)
