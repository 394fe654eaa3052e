#!/usr/bin/env node
// Fetches MsQuic's official Rust package (the `msquic` crate) at the pinned version with cargo and
// unpacks it into deps/msquic/source. The crate carries MsQuic's C sources and quictls' sources.
// Does nothing when the pinned version is already there.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const deps = join(root, 'deps', 'msquic')
const version = readFileSync(join(deps, 'VERSION'), 'utf8').trim()
const source = join(deps, 'source')
const stamp = join(source, '.node-msquic-version')

if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === version) {
  console.log(`msquic ${version}: sources present in deps/msquic/source`)
  process.exit(0)
}

const cargo = process.env.CARGO ?? 'cargo'
try {
  execFileSync(cargo, ['--version'], { stdio: 'ignore' })
} catch {
  console.error('fetch-msquic: cargo was not found. MsQuic sources come from its Rust package (the `msquic` crate);\n' +
    'install Rust (cargo), or unpack msquic-' + version + '.crate into deps/msquic/source yourself.')
  process.exit(1)
}

console.log(`msquic ${version}: fetching the msquic crate with cargo`)
const work = mkdtempSync(join(tmpdir(), 'node-msquic-fetch-'))
try {
  mkdirSync(join(work, 'src'))
  writeFileSync(join(work, 'src', 'main.rs'), 'fn main() {}\n')
  writeFileSync(join(work, 'Cargo.toml'), [
    '[package]', 'name = "node-msquic-fetch"', 'version = "0.0.0"', 'edition = "2021"', '',
    '[dependencies]', `msquic = { version = "=${version}", default-features = false }`, ''
  ].join('\n'))
  execFileSync(cargo, ['fetch', '--quiet'], { cwd: work, stdio: 'inherit' })

  // cargo keeps the verified .crate archive (a gzip'd tar) in its registry cache.
  const cargoHome = process.env.CARGO_HOME ?? join(homedir(), '.cargo')
  const cacheRoot = join(cargoHome, 'registry', 'cache')
  const name = `msquic-${version}.crate`
  const crate = readdirSync(cacheRoot).map(d => join(cacheRoot, d, name)).find(existsSync)
  if (!crate) throw new Error(`cargo fetched, but ${name} is not in ${cacheRoot}`)

  const unpack = join(work, 'unpack')
  mkdirSync(unpack)
  execFileSync('tar', ['xzf', crate, '-C', unpack])
  rmSync(source, { recursive: true, force: true })
  renameSync(join(unpack, `msquic-${version}`), source)
  writeFileSync(stamp, version + '\n')
  console.log(`msquic ${version}: unpacked into deps/msquic/source`)
} finally {
  rmSync(work, { recursive: true, force: true })
}
