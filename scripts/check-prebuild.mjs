#!/usr/bin/env node
// The gate of one prebuild: `node scripts/check-prebuild.mjs TARGET FILE` (targets in
// scripts/cross-toolchain.mjs). scripts/prebuild-all.mjs puts a file into prebuilds/ only after this
// passed on it. Checks:
// - the file: its architecture; it exports the two Node-API entry points and nothing else, and names
//   no OpenSSL symbol (Node's own OpenSSL must never bind into it); the libraries it needs are the C
//   library's (libc++ is linked in statically by zig), and for glibc no symbol version above Node 22's
//   own needs: GLIBC 2.28, and no GLIBCXX/CXXABI above GLIBCXX_3.4.21/CXXABI_1.3.9 (read from Node
//   22's official Linux build);
// - a run: scripts/smoke-prebuild.mjs (load, listen and connect, a stream each way, the request path,
//   an 8 MiB echo, a worker thread) on each Node that target serves (scripts/cross-runtimes.mjs):
//   x64 glibc on Node's own build here and on Debian 11's glibc 2.31 and libstdc++; x64 musl on a musl
//   Node; arm64 glibc and musl under qemu-aarch64, with ten times the timeouts.
// The whole test suite runs on the x64 glibc prebuild in CI (.ci/run), not here.
// Prints what it found; exits non-zero on the first failed check. With --json it ends with one line
// of JSON (what scripts/prebuild-all.mjs records).
import { spawnSync } from 'node:child_process'
import { statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { targets } from './cross-toolchain.mjs'
import { runtime } from './cross-runtimes.mjs'
import { compareVersions, dynamicSymbols, machine, neededLibraries, newestVersions } from './elf.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const [name, path] = process.argv.slice(2).filter(arg => !arg.startsWith('--'))
const json = process.argv.includes('--json')
const target = targets[name]
if (target === undefined || path === undefined) {
  console.error(`usage: check-prebuild.mjs TARGET FILE [--json]; targets: ${Object.keys(targets).join(', ')}`)
  process.exit(2)
}
const file = resolve(path)
const log = line => console.log(`check ${name}: ${line}`)
function fail (message) {
  console.error(`check ${name}: FAILED: ${message}`)
  process.exit(1)
}

// Node 22's official linux-x64 build needs these at most (objdump -T of v22's bin/node); Node 24's the same.
const ceilings = { GLIBC: '2.28', GLIBCXX: '3.4.21', CXXABI: '1.3.9' }
const machines = { x64: 'Advanced Micro Devices X86-64', arm64: 'AArch64' }
const libraries = {
  glibc: ['libc.so.6', 'libm.so.6', 'libpthread.so.0', 'libdl.so.2', 'librt.so.1', 'ld-linux-x86-64.so.2', 'ld-linux-aarch64.so.1'],
  musl: ['libc.so']
}

/** The ELF checks (also what test/native/symbols.test.ts asserts for every build). */
function staticChecks () {
  const found = machine(file)
  if (found !== machines[target.arch]) fail(`built for ${found}, not ${target.arch}`)
  const symbols = dynamicSymbols(file)
  const exported = symbols.filter(symbol => symbol.defined).map(symbol => symbol.name).sort()
  if (exported.join() !== 'napi_register_module_v1,node_api_module_get_api_version_v1') fail(`exports ${exported.slice(0, 8).join(', ')}`)
  const openssl = symbols.filter(symbol => /^(SSL_|EVP_|X509|OPENSSL_|BN_|CRYPTO_|ERR_)/.test(symbol.name))
  if (openssl.length > 0) fail(`names OpenSSL symbols in its dynamic table: ${openssl.slice(0, 5).map(s => s.name).join(', ')}`)
  const needed = neededLibraries(file)
  const unexpected = needed.filter(library => !libraries[target.libc].includes(library))
  if (unexpected.length > 0) fail(`needs ${unexpected.join(', ')}`)
  const versions = newestVersions(file)
  if (target.libc === 'glibc') {
    for (const [prefix, version] of versions) {
      const ceiling = ceilings[prefix]
      if (ceiling === undefined) fail(`needs ${prefix}_${version}, which Node 22 does not`)
      if (compareVersions(version, ceiling) > 0) fail(`needs ${prefix}_${version}, above ${prefix}_${ceiling}`)
    }
  } else if (versions.size > 0) {
    fail(`asks for symbol versions (${[...versions].map(([p, v]) => `${p}_${v}`).join(', ')}): musl has none`)
  }
  const ceiling = target.libc === 'musl' ? 'musl' : [...versions].map(([p, v]) => `${p}_${v}`).join(', ')
  log(`${(statSync(file).size / 1024 / 1024).toFixed(2)} MiB, ${found}, needs ${needed.join(', ')}; newest versions: ${ceiling}; exports ${exported.join(', ')}`)
  return { bytes: statSync(file).size, needed, ceiling }
}

/** The smoke run on one Node. */
function smoke (system) {
  const node = runtime(system)
  log(`smoke run on ${node.label}`)
  const started = Date.now()
  const [command, ...args] = node.argv
  const result = spawnSync(command, [...args, join(root, 'scripts', 'smoke-prebuild.mjs')], {
    cwd: root,
    env: { ...process.env, NODE_MSQUIC_ADDON: file, SMOKE_SLOW: node.emulated ? '1' : '0' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    // The smoke run bounds each step itself; this only catches a hang in exit.
    timeout: (node.emulated ? 900 : 300) * 1000
  })
  process.stdout.write(result.stdout.split('\n').map(line => line === '' ? '' : `  ${line}`).join('\n'))
  const summary = result.stdout.trim().split('\n').at(-1)
  if (result.status !== 0 || !summary?.includes('"smoke":"passed"')) fail(`the smoke run on ${node.label} failed (${result.status ?? result.signal})`)
  return { system: node.label, seconds: Number(((Date.now() - started) / 1000).toFixed(1)) }
}

const systems = {
  'linux-x64-glibc': ['linux-x64-glibc', 'linux-x64-glibc-bullseye'],
  'linux-x64-musl': ['linux-x64-musl'],
  'linux-arm64-glibc': ['linux-arm64-glibc'],
  'linux-arm64-musl': ['linux-arm64-musl']
}
const record = { target: name, ...staticChecks(), runs: systems[name].map(smoke) }
log(`passed: ${record.runs.map(run => `${run.system} in ${run.seconds} s`).join('; ')}`)
if (json) console.log(JSON.stringify(record))
