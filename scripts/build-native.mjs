#!/usr/bin/env node
// Builds the addon: fetches MsQuic's sources if needed (scripts/fetch-msquic.mjs), then runs
// cmake-js, which builds MsQuic once into a cache outside the clone (cmake/msquic.cmake) and links
// it into build/Release/node_msquic.node. With --if-missing it does nothing when the addon exists.
// With --sanitize=address,undefined it builds a sanitizer build (MsQuic included) into
// build-sanitize/Release/ instead. Other arguments go to cmake-js.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const ifMissing = args.includes('--if-missing')
const sanitize = args.find(a => a.startsWith('--sanitize='))?.slice('--sanitize='.length)
const out = sanitize === undefined ? 'build' : 'build-sanitize'
const extra = args.filter(a => a !== '--if-missing' && !a.startsWith('--sanitize='))
if (sanitize !== undefined) extra.push(`--CDNODE_MSQUIC_SANITIZE=${sanitize}`, '--CDCMAKE_BUILD_TYPE=RelWithDebInfo')
const addon = join(root, out, 'Release', 'node_msquic.node')

if (ifMissing && existsSync(addon)) {
  console.log('node-msquic: addon already built')
  process.exit(0)
}
const started = Date.now()
execFileSync(process.execPath, [join(root, 'scripts', 'fetch-msquic.mjs')], { stdio: 'inherit' })
const require = createRequire(import.meta.url)
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js')
execFileSync(process.execPath, [cmakeJs, 'compile', '--out', out, ...extra], { cwd: root, stdio: 'inherit' })
console.log(`node-msquic: addon built in ${((Date.now() - started) / 1000).toFixed(1)} s: ${addon}`)
