#!/usr/bin/env node
// `npm run test:package`: what a user of the npm tarball gets. Packs the package (prepack builds and
// checks the four prebuilds: scripts/prebuild-all.mjs), then:
// 1. installs the tarball into an empty folder with nothing but node and npm on PATH (no compiler,
//    cmake, make or cargo), once with Node 22 and once with Node 24 from the npm registry, and runs a
//    loopback echo through the package's API with each: both must load the same prebuilt file, the
//    x64 glibc one;
// 2. does the same on a musl Node (scripts/cross-runtimes.mjs) that is not on Alpine and has no LIBC
//    set, as on Void or in a musl Node copied into a glibc image: the install must pick and load the
//    x64 musl prebuild, not build;
// 3. installs it with npm_config_build_from_source=true (compilers present, cargo hidden, an empty
//    MsQuic cache), so MsQuic and the addon build from the sources the tarball carries, and runs the
//    echo on that build.
// Prints the tarball's sizes, each prebuild's size and the install times; exits non-zero on a failure.
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runtime } from './cross-runtimes.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const work = mkdtempSync(join(tmpdir(), 'node-msquic-package-'))
const started = Date.now()
const seconds = ms => `${(ms / 1000).toFixed(1)} s`
const elapsed = since => seconds(Date.now() - since)
const mb = bytes => `${(bytes / 1024 / 1024).toFixed(1)} MiB`
const log = line => console.log(`test:package: ${line}`)
function fail (message) {
  console.error(`test:package: FAILED: ${message} (files kept in ${work})`)
  process.exit(1)
}

/** The first `name` on `path`, or undefined. */
function which (name, path = process.env.PATH ?? '') {
  for (const dir of path.split(delimiter)) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name)
  }
  return undefined
}

// Node 22 and 24 from the npm registry, resolved while the full PATH is still in place.
const nodes = {}
for (const major of [22, 24]) {
  const path = execFileSync('npx', ['-y', `node@${major}`, '-p', 'process.execPath'], { encoding: 'utf8' }).trim()
  const version = execFileSync(path, ['--version'], { encoding: 'utf8' }).trim()
  if (!version.startsWith(`v${major}.`)) fail(`node@${major} resolved to ${version}`)
  nodes[major] = path
}
// npm itself is JavaScript: it runs on whichever of those Nodes starts it.
const npmCli = realpathSync(which('npm') ?? fail('npm is not on PATH'))
const shell = realpathSync(which('sh') ?? fail('sh is not on PATH'))

// An outer `npm run` exports its settings as npm_* variables; the installs below must not inherit them.
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)))

/** Runs `node npm-cli.js args` in `cwd`; fails the test on a non-zero exit. Returns stdout. */
function npm (node, args, cwd, env, capture = false) {
  const result = spawnSync(node, [npmCli, ...args], { cwd, env, stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'], encoding: 'utf8' })
  if (result.status !== 0) fail(`npm ${args.join(' ')} exited with ${result.status ?? result.signal}`)
  return result.stdout
}

// --- the tarball ---------------------------------------------------------------------------------
// prepack on its own, so its build output stays out of `npm pack --json`'s answer.
log('npm run prepack: MsQuic sources, dist/, the four prebuilds (built and checked)')
const packStarted = Date.now()
npm(nodes[24], ['run', 'prepack'], root, process.env)
const pack = JSON.parse(npm(nodes[24], ['pack', '--json', '--ignore-scripts', '--pack-destination', work], root, process.env, true))[0]
const tarball = join(work, pack.filename)
log(`prepacked and packed ${pack.filename} in ${elapsed(packStarted)}: ${mb(pack.size)} packed, ${mb(pack.unpackedSize)} unpacked, ${pack.entryCount} files`)

const prebuilds = ['linux-x64/node-msquic.glibc.node', 'linux-x64/node-msquic.musl.node', 'linux-arm64/node-msquic.glibc.node', 'linux-arm64/node-msquic.musl.node']
  .map(name => pack.files.find(file => file.path === `prebuilds/${name}`) ?? fail(`the tarball carries no prebuilds/${name}`))
const extra = pack.files.filter(file => file.path.startsWith('prebuilds/') && !prebuilds.includes(file))
if (extra.length > 0) fail(`the tarball carries other prebuilds: ${extra.map(file => file.path).join(', ')}`)
for (const file of prebuilds) log(`prebuild ${file.path}: ${mb(file.size)} (stripped)`)
const [prebuild, muslPrebuild] = prebuilds

// Lean: what loading, the install step and a source build use, nothing else (no tests, benchmarks,
// TypeScript sources, source maps or build folders).
const allowed = [
  /^(package\.json|README\.md|LICENSE|CMakeLists\.txt)$/, /^dist\/.+\.(js|d\.ts)$/, /^prebuilds\/[^/]+\/[^/]+\.node$/,
  /^scripts\/(install|build-native|fetch-msquic|msquic-patches)\.mjs$/, /^native\/(core|binding)\/[^/]+$/, /^cmake\/[^/]+$/,
  /^deps\/msquic\/(VERSION|README\.md|msquic-[^/]+\.tar\.gz|patches\/[^/]+\.patch)$/
]
const unwanted = pack.files.map(file => file.path).filter(path => !allowed.some(pattern => pattern.test(path)))
if (unwanted.length > 0) fail(`the tarball carries what a user does not need: ${unwanted.slice(0, 5).join(', ')}`)
// A source build needs MsQuic's sources: one archive, which only a source build unpacks.
const version = readFileSync(join(root, 'deps', 'msquic', 'VERSION'), 'utf8').trim()
const sources = pack.files.find(file => file.path === `deps/msquic/msquic-${version}.tar.gz`)
if (sources === undefined) fail(`the tarball carries no deps/msquic/msquic-${version}.tar.gz`)
log(`MsQuic sources deps/msquic/msquic-${version}.tar.gz: ${mb(sources.size)}`)

// Written into each install folder: `import 'node-msquic'` resolves from the importing file's folder.
const echo = `// A loopback echo through the installed package; prints which addon file this process loaded.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { connect, createSelfSignedCertificate, listen } from 'node-msquic'

setTimeout(() => { console.error('echo: timed out'); process.exit(1) }, 30000).unref()
const { cert, key } = await createSelfSignedCertificate()
const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'echo', cert, key })
const served = (async () => {
  for await (const connection of listener) for await (const stream of connection) stream.pipe(stream)
})()
const client = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'echo', ca: cert })
const stream = await client.openStream()
stream.end('hello over QUIC')
let reply = ''
for await (const chunk of stream) reply += chunk
await client.close()
await listener.close()
await served
const addon = [...new Set(readFileSync('/proc/self/maps', 'utf8').split('\\n')
  .map(line => line.slice(line.indexOf('/'))).filter(path => path.endsWith('.node')))]
if (addon.length !== 1) throw new Error('expected one addon mapped, found: ' + addon.join(', '))
const sha256 = createHash('sha256').update(readFileSync(addon[0])).digest('hex')
console.log(JSON.stringify({ node: process.version, addon: addon[0], sha256, reply }))
`

/** Installs the tarball into a new folder; returns the folder and the install's duration in ms. */
function install (name, node, env) {
  const dir = join(work, name)
  mkdirSync(dir)
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, private: true, type: 'module' }))
  writeFileSync(join(dir, 'echo.mjs'), echo)
  const begun = Date.now()
  npm(node, ['install', tarball, '--no-audit', '--no-fund', '--foreground-scripts'], dir, env)
  return { dir, ms: Date.now() - begun }
}

/** Runs the echo in `dir` on `node`; returns what it printed. */
function runEcho (dir, node, env) {
  const result = spawnSync(node, ['echo.mjs'], { cwd: dir, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  if (result.status !== 0) fail(`the echo under ${node} exited with ${result.status ?? result.signal}`)
  const line = JSON.parse(result.stdout.trim().split('\n').at(-1))
  if (line.reply !== 'hello over QUIC') fail(`the echo replied ${JSON.stringify(line.reply)}`)
  return { ...line, addon: relative(join(dir, 'node_modules', 'node-msquic'), line.addon) }
}

// --- 1. prebuilt: no compiler on PATH ------------------------------------------------------------
const toolchain = ['cc', 'gcc', 'g++', 'c++', 'clang', 'clang++', 'cmake', 'make', 'ninja', 'cargo']
const installs = {}

/** Installs the tarball with `node` and nothing but npm on PATH; the echo must run on `expected`. */
function installPrebuilt (name, label, node, expected) {
  // PATH is one folder holding node, npm and the shell npm runs scripts with, nothing else.
  const bin = join(work, `bin-${name}`)
  mkdirSync(bin)
  symlinkSync(node, join(bin, 'node'))
  symlinkSync(npmCli, join(bin, 'npm'))
  symlinkSync(shell, join(bin, 'sh'))
  const env = { ...cleanEnv, PATH: bin }
  delete env.LIBC
  const present = toolchain.filter(tool => which(tool, env.PATH) !== undefined)
  if (present.length > 0) fail(`the reduced PATH still finds ${present.join(', ')}`)

  log(`${label}: npm install <tarball> with only node and npm on PATH`)
  const { dir, ms } = install(`prebuilt-${name}`, node, env)
  const installed = join(dir, 'node_modules', 'node-msquic')
  if (existsSync(join(installed, 'build'))) fail(`${label}: the install compiled (build/ exists)`)
  if (existsSync(join(installed, 'deps', 'msquic', 'source'))) fail(`${label}: the install unpacked MsQuic's sources`)
  const result = runEcho(dir, node, env)
  log(`${label}: installed in ${seconds(ms)}; ${result.node} echoed through ${result.addon}, sha256 ${result.sha256}`)
  if (result.addon !== expected.path) fail(`${label} loaded ${result.addon}, not ${expected.path}`)
  if (result.sha256 !== createHash('sha256').update(readFileSync(join(root, expected.path))).digest('hex')) {
    fail(`${label} loaded a file that differs from the packed prebuild`)
  }
  installs[name] = ms
}

for (const major of [22, 24]) installPrebuilt(major, `Node ${major}`, nodes[major], prebuild)

// --- 2. prebuilt on musl, off Alpine and without LIBC ---------------------------------------------
// As on Void, or a musl Node copied into a glibc image: node-gyp-build alone would pick the glibc file.
if (existsSync('/etc/alpine-release')) fail('this system is Alpine: the musl install would not test the loader\'s own detection')
const musl = runtime('linux-x64-musl')
installPrebuilt('musl', musl.label, musl.argv[0], muslPrebuild)

// --- 3. from source: compilers present, cargo hidden, nothing cached -----------------------------
const stubs = join(work, 'stubs')
mkdirSync(stubs)
// fetch-msquic runs `cargo --version` first: a failing stub makes any use of cargo fail the install.
writeFileSync(join(stubs, 'cargo'), '#!/bin/sh\necho "test:package: cargo was called" >&2\nexit 97\n', { mode: 0o755 })
const cache = join(work, 'msquic-cache')
const env = { ...cleanEnv, PATH: [stubs, dirname(nodes[24]), process.env.PATH].join(delimiter), NODE_MSQUIC_CACHE: cache, npm_config_build_from_source: 'true' }
delete env.CARGO
log('Node 24: npm install <tarball> with npm_config_build_from_source=true, an empty MsQuic cache, no cargo')
const source = install('source', nodes[24], env)
const built = join(source.dir, 'node_modules', 'node-msquic', 'build', 'Release', 'node_msquic.node')
if (!existsSync(built)) fail('the source install produced no build/Release/node_msquic.node')
if (readdirSync(cache).length === 0) fail('MsQuic was not built into the empty cache')
for (const major of [22, 24]) {
  const result = runEcho(source.dir, nodes[major], env)
  log(`Node ${major}: ${result.node} echoed through the source build ${result.addon}, sha256 ${result.sha256}`)
  if (result.addon !== 'build/Release/node_msquic.node') fail(`the source install loaded ${result.addon}`)
}
log(`source build installed in ${seconds(source.ms)}: ${mb(statSync(built).size)} unstripped`)

rmSync(work, { recursive: true, force: true })
log(`tarball ${mb(pack.size)} packed, ${mb(pack.unpackedSize)} unpacked; prebuilds ${prebuilds.map(file => mb(file.size)).join(', ')}; ` +
  `install with no compiler ${seconds(installs[22])} (Node 22), ${seconds(installs[24])} (Node 24), ${seconds(installs.musl)} (musl Node); ` +
  `install building from source ${seconds(source.ms)}`)
log(`passed in ${elapsed(started)}`)
