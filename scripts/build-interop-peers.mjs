#!/usr/bin/env node
// Builds the interop peers (test/interop/peers/*) into a cache outside the clone, once per version of
// their sources: <cache>/<peer>-<hash>/peer, where <hash> covers the peer's files and its toolchain's
// version. The cache is ~/.cache/node-msquic-interop (NODE_MSQUIC_INTEROP_CACHE overrides). What is
// cached is skipped; what is missing is built, the three in parallel, under nice.
//
//   node scripts/build-interop-peers.mjs            build what is missing, print {peer: path} as JSON
//   node scripts/build-interop-peers.mjs --check    build nothing; exit 1 if a peer is missing
//   node scripts/build-interop-peers.mjs --only quinn,quicgo
//
// The tests find the binaries with peerPaths() below, so they always run the peers of the sources
// they were checked out with.
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, chmodSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const peersDir = join(root, 'test', 'interop', 'peers')
export const PEERS = ['quicgo', 'quinn', 'aioquic', 'go-kad']
/** Peers built with `go build`; go-kad (go-libp2p-kad-dht, the discovery tests' foreign Kademlia) lives in test/interop/go-kad. */
const GO = ['quicgo', 'go-kad']
const sourceDir = peer => peer === 'go-kad' ? join(root, 'test', 'interop', 'go-kad') : join(peersDir, peer)

export function cacheDir () {
  return process.env.NODE_MSQUIC_INTEROP_CACHE || join(homedir(), '.cache', 'node-msquic-interop')
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

const toolchains = new Map()
/** The toolchain's version, part of the cache key (a new compiler builds anew); '' if missing. */
function toolchain (peer) {
  if (!toolchains.has(peer)) {
    const [command, args] = GO.includes(peer) ? ['go', ['version']] : peer === 'quinn' ? ['rustc', ['--version']] : ['python3', ['--version']]
    // Without the sanitizer runtimes `npm run test:sanitized` preloads: the answer must not change.
    const env = { ...process.env }
    for (const name of ['LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'NODE_OPTIONS']) delete env[name]
    const result = spawnSync(command, args, { encoding: 'utf8', env })
    toolchains.set(peer, result.status === 0 ? `${result.stdout}${result.stderr}`.trim() : '')
  }
  return toolchains.get(peer)
}

/** Where each peer's launcher is (or will be) for the current sources. */
export function peerPaths () {
  const paths = {}
  for (const peer of PEERS) {
    const hash = createHash('sha256')
    const dir = sourceDir(peer)
    for (const file of files(dir)) hash.update(relative(dir, file)).update('\0').update(readFileSync(file)).update('\0')
    hash.update(toolchain(peer))
    paths[peer] = join(cacheDir(), `${peer}-${hash.digest('hex').slice(0, 16)}`, 'peer')
  }
  return paths
}

function run (command, args, options, log) {
  return new Promise((resolve, reject) => {
    log.write(`$ ${command} ${args.join(' ')}\n`)
    const child = spawn('nice', ['-n', '10', command, ...args], { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.pipe(log, { end: false })
    child.stderr.pipe(log, { end: false })
    child.on('error', reject)
    child.on('close', code => code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited with ${code}`)))
  })
}

async function build (peer, target, log) {
  const source = sourceDir(peer)
  const work = mkdtempSync(join(cacheDir(), `.work-${peer}-`))
  try {
    if (GO.includes(peer)) {
      await run('go', ['build', '-trimpath', '-mod=readonly', '-o', join(work, 'peer'), '.'], { cwd: source }, log)
    } else if (peer === 'quinn') {
      // One target directory for every version of the sources: a change rebuilds only the peer.
      const targetDir = join(cacheDir(), 'quinn-target')
      await run('cargo', ['build', '--release', '--locked'], { cwd: source, env: { ...process.env, CARGO_TARGET_DIR: targetDir } }, log)
      copyFileSync(join(targetDir, 'release', 'interop-quinn'), join(work, 'peer'))
      chmodSync(join(work, 'peer'), 0o755)
    } else {
      await run('python3', ['-m', 'venv', join(work, 'venv')], {}, log)
      await run(join(work, 'venv', 'bin', 'python'), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-input',
        '-r', join(source, 'requirements.txt')], {}, log)
      copyFileSync(join(source, 'peer.py'), join(work, 'peer.py'))
      // The venv's python finds its packages relative to itself, so the directory can move.
      writeFileSync(join(work, 'peer'), '#!/bin/sh\nhere=$(dirname "$0")\nexec "$here/venv/bin/python" "$here/peer.py" "$@"\n', { mode: 0o755 })
    }
    try {
      renameSync(work, dirname(target))
    } catch (error) {
      // Another build of the same sources finished first: keep that one.
      if (!existsSync(target)) throw error
      rmSync(work, { recursive: true, force: true })
    }
  } catch (error) {
    rmSync(work, { recursive: true, force: true })
    throw error
  }
}

export async function buildPeers ({ only = PEERS, quiet = false } = {}) {
  mkdirSync(join(cacheDir(), 'logs'), { recursive: true })
  const paths = peerPaths()
  const say = quiet ? () => {} : message => process.stderr.write(`interop peers: ${message}\n`)
  const started = Date.now()
  const failures = []
  await Promise.all(only.map(async peer => {
    if (existsSync(paths[peer])) {
      say(`${peer}: cached (${dirname(paths[peer])})`)
      return
    }
    if (toolchain(peer) === '') {
      failures.push(`${peer}: its toolchain is missing (${GO.includes(peer) ? 'go' : peer === 'quinn' ? 'cargo/rustc' : 'python3'})`)
      return
    }
    const logPath = join(cacheDir(), 'logs', `${peer}.log`)
    const log = createWriteStream(logPath)
    const begun = Date.now()
    say(`${peer}: building (log: ${logPath})`)
    try {
      await build(peer, paths[peer], log)
      say(`${peer}: built in ${((Date.now() - begun) / 1000).toFixed(1)} s`)
    } catch (error) {
      failures.push(`${peer}: ${error.message}\n${tail(logPath)}`)
    } finally {
      log.end()
    }
  }))
  say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  if (failures.length > 0) throw new Error(`interop peers failed to build:\n${failures.join('\n')}`)
  return paths
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
  const only = onlyArg ? (onlyArg.includes('=') ? onlyArg.split('=')[1] : args[args.indexOf(onlyArg) + 1]).split(',') : PEERS
  for (const peer of only) if (!PEERS.includes(peer)) { console.error(`unknown peer ${peer}`); process.exit(2) }
  if (args.includes('--check')) {
    const paths = peerPaths()
    const missing = only.filter(peer => !existsSync(paths[peer]))
    console.log(JSON.stringify(paths))
    process.exit(missing.length > 0 ? 1 : 0)
  }
  try {
    console.log(JSON.stringify(await buildPeers({ only })))
  } catch (error) {
    console.error(error.message)
    process.exit(1)
  }
}
