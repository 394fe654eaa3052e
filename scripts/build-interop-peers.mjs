#!/usr/bin/env node
// Builds the interop peers (the programs on other stacks that test/interop and test/libp2p run) into a
// cache outside the clone, once per version of their sources: <cache>/<peer>-<hash>/peer, where <hash>
// covers the peer's files and its toolchain's version. The cache is ~/.cache/node-msquic-interop
// (NODE_MSQUIC_INTEROP_CACHE overrides). What is cached is skipped; what is missing is built, all in
// parallel, under nice, with a line per peer when it starts and ends and a heartbeat while any builds.
// `npm test` (scripts/test.mjs) runs this before the tests start; the tests never build.
//
//   node scripts/build-interop-peers.mjs            build what is missing, print {peer: path} as JSON
//   node scripts/build-interop-peers.mjs --check    build nothing; exit 1 if a peer is missing
//   node scripts/build-interop-peers.mjs --only quinn,quicgo
//
// The tests find their peer with findPeer() below, so they always run the peers of the sources they
// were checked out with.
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, chmodSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

// A toolchain: the command whose output is its version (part of the cache key; it fails where the
// toolchain is missing, and then the suites that need it are skipped) and what to install.
const GO = { version: ['go', 'version'], missing: 'go is not installed (install Go >= 1.26, Debian: golang-go)' }
// rustc's version keys the build; cargo comes with it (rustup, or Debian's cargo).
const RUST = { version: ['rustc', '--version'], missing: 'cargo is not installed (install Rust with rustup, or Debian: cargo)' }
// Prints what `python3 --version` prints, and fails without venv and ensurepip (Debian: python3-venv).
const PYTHON = {
  version: ['python3', '-c', 'import ensurepip, venv, platform; print("Python", platform.python_version())'],
  missing: 'python3 with venv is not installed (Debian: python3-venv)'
}

/** `go build` of the module in `source` into `out`/peer. */
function goBuild ({ source, out, run }) {
  return run('go', ['build', '-trimpath', '-mod=readonly', '-o', join(out, 'peer'), '.'], { cwd: source })
}

/**
 * The peers, one entry each: `source`, the folder whose files key the build; `toolchain`; `build`,
 * which makes `out` (a fresh folder that becomes <cache>/<name>-<hash>/) hold an executable `peer`;
 * `tests`, the test files that run it (`npm test -- <file>` builds only the peers its files need).
 */
export const PEERS = [
  { name: 'quicgo', source: 'test/interop/peers/quicgo', toolchain: GO, build: goBuild, tests: ['test/interop/quicgo.test.ts'] },
  {
    name: 'quinn',
    source: 'test/interop/peers/quinn',
    toolchain: RUST,
    tests: ['test/interop/quinn.test.ts'],
    async build ({ source, out, cache, run }) {
      // One target directory for every version of the sources: a change rebuilds only the peer.
      const targetDir = join(cache, 'quinn-target')
      await run('cargo', ['build', '--release', '--locked'], { cwd: source, env: { CARGO_TARGET_DIR: targetDir } })
      copyFileSync(join(targetDir, 'release', 'interop-quinn'), join(out, 'peer'))
      chmodSync(join(out, 'peer'), 0o755)
    }
  },
  {
    name: 'aioquic',
    source: 'test/interop/peers/aioquic',
    toolchain: PYTHON,
    tests: ['test/interop/aioquic.test.ts'],
    async build ({ source, out, run }) {
      await run('python3', ['-m', 'venv', join(out, 'venv')])
      await run(join(out, 'venv', 'bin', 'python'), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-input',
        '-r', join(source, 'requirements.txt')])
      copyFileSync(join(source, 'peer.py'), join(out, 'peer.py'))
      // The venv's python finds its packages relative to itself, so the directory can move.
      writeFileSync(join(out, 'peer'), '#!/bin/sh\nhere=$(dirname "$0")\nexec "$here/venv/bin/python" "$here/peer.py" "$@"\n', { mode: 0o755 })
    }
  },
  { name: 'go-libp2p', source: 'test/interop/go-libp2p', toolchain: GO, build: goBuild, tests: ['test/libp2p/go-interop.test.ts'] },
  // go-libp2p-kad-dht, the discovery tests' foreign Kademlia.
  { name: 'go-kad', source: 'test/interop/go-kad', toolchain: GO, build: goBuild, tests: ['test/discovery/go-kad.test.ts'] }
]

/** CI (CI=true or CI=1) installs every toolchain: there a missing peer fails its suites instead of skipping them. */
export const inCi = process.env.CI === 'true' || process.env.CI === '1'

export function cacheDir () {
  return process.env.NODE_MSQUIC_INTEROP_CACHE || join(homedir(), '.cache', 'node-msquic-interop')
}

/**
 * The environment for toolchains, peers and openssl: without the sanitizer runtimes `npm run
 * test:sanitized` preloads into Node (the peers are not under test, and ASan in a Go or Python process
 * only adds noise).
 */
export function childEnv (extra = {}) {
  const env = { ...process.env, ...extra }
  for (const name of ['LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'NODE_OPTIONS']) delete env[name]
  return env
}

function files (dir) {
  const out = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'target' || entry.name === '__pycache__' || entry.name.startsWith('.')) continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...files(path))
    else out.push(path)
  }
  return out.sort()
}

// Asynchronous (execFile), so that a test process that looks for its peer never blocks on a toolchain.
const versions = new Map()
/** The toolchain's version, or undefined where it is missing. */
function toolchainVersion (toolchain) {
  if (!versions.has(toolchain)) {
    const [command, ...args] = toolchain.version
    versions.set(toolchain, new Promise(resolve => {
      execFile(command, args, { encoding: 'utf8', env: childEnv(), timeout: 60_000 }, (error, stdout, stderr) => {
        resolve(error ? undefined : `${stdout}${stderr}`.trim())
      })
    }))
  }
  return versions.get(toolchain)
}

function entry (name) {
  const peer = PEERS.find(p => p.name === name)
  if (peer === undefined) throw new Error(`unknown interop peer ${name} (scripts/build-interop-peers.mjs lists ${PEERS.map(p => p.name).join(', ')})`)
  return peer
}

/**
 * Where the peer's launcher is (or will be) for the current sources: { name, path, built, missing },
 * `missing` saying why it cannot be built here (its toolchain is not installed).
 */
export async function findPeer (name) {
  const peer = entry(name)
  const version = await toolchainVersion(peer.toolchain)
  const hash = createHash('sha256')
  const dir = join(root, peer.source)
  for (const file of files(dir)) hash.update(relative(dir, file)).update('\0').update(readFileSync(file)).update('\0')
  hash.update(version ?? '')
  const path = join(cacheDir(), `${name}-${hash.digest('hex').slice(0, 16)}`, 'peer')
  return { name, path, built: existsSync(path), missing: version === undefined ? peer.toolchain.missing : undefined }
}

function run (log) {
  return (command, args, { cwd, env } = {}) => new Promise((resolve, reject) => {
    log.write(`$ ${command} ${args.join(' ')}\n`)
    const child = spawn('nice', ['-n', '10', command, ...args], { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.pipe(log, { end: false })
    child.stderr.pipe(log, { end: false })
    child.on('error', reject)
    child.on('close', code => code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited with ${code}`)))
  })
}

async function build (peer, target, log) {
  const out = mkdtempSync(join(cacheDir(), `.work-${peer.name}-`))
  try {
    await peer.build({ source: join(root, peer.source), out, cache: cacheDir(), run: run(log) })
    try {
      renameSync(out, dirname(target))
    } catch (error) {
      // Another build of the same sources finished first: keep that one.
      if (!existsSync(target)) throw error
      rmSync(out, { recursive: true, force: true })
    }
  } catch (error) {
    rmSync(out, { recursive: true, force: true })
    throw error
  }
}

const seconds = ms => `${Math.round(ms / 1000)} s`

/**
 * Builds the peers named in `only` that are missing. Resolves to one result per peer: { name, path,
 * state, detail }, state 'cached', 'built', 'no-toolchain' (detail says which) or 'failed' (detail
 * holds the error and the end of the build's log). `say` receives the progress lines.
 */
export async function buildPeers ({ only = PEERS.map(p => p.name), say = message => process.stderr.write(`${message}\n`), heartbeat = 30_000 } = {}) {
  mkdirSync(join(cacheDir(), 'logs'), { recursive: true })
  const started = Date.now()
  const building = new Set()
  const timer = setInterval(() => {
    if (building.size > 0) say(`interop peers: still building ${[...building].join(', ')} (${seconds(Date.now() - started)}; a first build fetches and compiles its stack)`)
  }, heartbeat)
  try {
    return await Promise.all(only.map(async name => {
      const found = await findPeer(name)
      if (found.built) return { ...found, state: 'cached' }
      if (found.missing !== undefined) return { ...found, state: 'no-toolchain', detail: found.missing }
      const logPath = join(cacheDir(), 'logs', `${name}.log`)
      const log = createWriteStream(logPath)
      const begun = Date.now()
      building.add(name)
      say(`interop peers: building ${name} (log: ${logPath})`)
      try {
        await build(entry(name), found.path, log)
        say(`interop peers: built ${name} in ${seconds(Date.now() - begun)}`)
        return { ...found, built: true, state: 'built' }
      } catch (error) {
        say(`interop peers: ${name} failed to build after ${seconds(Date.now() - begun)} (log: ${logPath})`)
        return { ...found, state: 'failed', detail: `${error.message}\n${tail(logPath)}` }
      } finally {
        building.delete(name)
        log.end()
      }
    }))
  } finally {
    clearInterval(timer)
  }
}

function tail (path) {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-30).join('\n')
  } catch {
    return ''
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2)
  const onlyArg = args.find(a => a.startsWith('--only'))
  const only = onlyArg ? (onlyArg.includes('=') ? onlyArg.split('=')[1] : args[args.indexOf(onlyArg) + 1]).split(',') : PEERS.map(p => p.name)
  for (const name of only) if (!PEERS.some(p => p.name === name)) { console.error(`unknown peer ${name}`); process.exit(2) }
  const results = args.includes('--check')
    ? await Promise.all(only.map(findPeer))
    : await buildPeers({ only })
  console.log(JSON.stringify(Object.fromEntries(results.map(r => [r.name, r.path]))))
  for (const r of results) if (r.state === 'cached') console.error(`interop peers: ${r.name} cached (${dirname(r.path)})`)
  const missing = results.filter(r => !r.built)
  for (const r of missing) console.error(`interop peers: ${r.name} is missing: ${r.detail ?? r.missing ?? 'not built'}`)
  process.exit(missing.length > 0 ? 1 : 0)
}
