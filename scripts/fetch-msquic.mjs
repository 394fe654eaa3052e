#!/usr/bin/env node
// Puts MsQuic's sources at the pinned version into deps/msquic/source, from the first of:
// - deps/msquic/source itself, when it already holds that version;
// - deps/msquic/msquic-<version>.tar.gz, the trimmed sources the npm tarball carries (no cargo);
// - MsQuic's official Rust package (the `msquic` crate), fetched with cargo. The crate carries
//   MsQuic's C sources and quictls' sources.
// Then it drops what the build never reads (see trim()). With --archive it also packs the trimmed
// sources into deps/msquic/msquic-<version>.tar.gz for the npm tarball (prepack): one file rather than
// thousands, so an install that uses a prebuilt addon unpacks little and takes seconds.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { applyPatches, patches, patchesId } from './msquic-patches.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const deps = join(root, 'deps', 'msquic')
const version = readFileSync(join(deps, 'VERSION'), 'utf8').trim()
const source = join(deps, 'source')
const stamp = join(source, '.node-msquic-version')
const archive = join(deps, `msquic-${version}.tar.gz`)
// Our patches (deps/msquic/patches): applied once to fresh sources; the stamp below records which,
// and cmake/msquic.cmake puts it into the build's cache key.
const patchList = patches(join(deps, 'patches'))
const patchStamp = join(source, '.node-msquic-patches')
const wantedPatches = patchesId(patchList)
const appliedPatches = () => existsSync(patchStamp) ? readFileSync(patchStamp, 'utf8').trim() : ''

// Paths in the crate that the Linux/macOS CMake build never reads: docs, the Rust binding and its
// build script, Windows-only sources (the DLL and driver, ETW manifests), quictls' change logs.
const unused = [
  'docs', 'scripts', 'src/rs', 'src/manifest', 'src/bin/winuser', 'src/bin/winkernel', 'src/bin/winuser_fuzz',
  'Cargo.toml', 'Cargo.toml.orig', 'Cargo.lock', 'rust-toolchain.toml',
  'submodules/quictls/CHANGES.md', 'submodules/quictls/NEWS.md'
]

/** Removes what the build does not need. Idempotent: safe on an already trimmed tree. */
function trim () {
  for (const path of unused) rmSync(join(source, path), { recursive: true, force: true })
  // quictls' Configure checks that every manual page its doc/build.info names exists; the manuals are
  // only built by `make install_docs`, which MsQuic never runs. An empty doc/build.info drops them all.
  const doc = join(source, 'submodules', 'quictls', 'doc')
  for (const entry of readdirSync(doc)) {
    if (entry !== 'build.info') rmSync(join(doc, entry), { recursive: true, force: true })
  }
  if (readFileSync(join(doc, 'build.info'), 'utf8') !== '') writeFileSync(join(doc, 'build.info'), '')
}

/** Unpacks a gzip'd tar holding one top folder (the crate's or our archive's) into deps/msquic/source. */
function unpack (file, work) {
  const into = join(work, 'unpack')
  mkdirSync(into)
  execFileSync('tar', ['xzf', file, '-C', into, '--no-same-owner'])
  const top = readdirSync(into)
  if (top.length !== 1) throw new Error(`${file} holds ${top.length} top folders, not one`)
  rmSync(source, { recursive: true, force: true })
  renameSync(join(into, top[0]), source)
}

const cargo = process.env.CARGO ?? 'cargo'

function requireCargo () {
  try {
    execFileSync(cargo, ['--version'], { stdio: 'ignore' })
  } catch {
    console.error('fetch-msquic: cargo was not found. MsQuic sources come from its Rust package (the `msquic` crate);\n' +
      'install Rust (cargo), or unpack msquic-' + version + '.crate into deps/msquic/source yourself.')
    process.exit(1)
  }
}

/** Fetches the crate with cargo; returns the path of the verified .crate archive (a gzip'd tar). */
function fetchCrate (work) {
  console.log(`msquic ${version}: fetching the msquic crate with cargo`)
  mkdirSync(join(work, 'src'))
  writeFileSync(join(work, 'src', 'main.rs'), 'fn main() {}\n')
  writeFileSync(join(work, 'Cargo.toml'), [
    '[package]', 'name = "node-msquic-fetch"', 'version = "0.0.0"', 'edition = "2021"', '',
    '[dependencies]', `msquic = { version = "=${version}", default-features = false }`, ''
  ].join('\n'))
  execFileSync(cargo, ['fetch', '--quiet'], { cwd: work, stdio: 'inherit' })

  // cargo keeps the verified .crate archive in its registry cache.
  const cargoHome = process.env.CARGO_HOME ?? join(homedir(), '.cargo')
  const cacheRoot = join(cargoHome, 'registry', 'cache')
  const name = `msquic-${version}.crate`
  const crate = readdirSync(cacheRoot).map(d => join(cacheRoot, d, name)).find(existsSync)
  if (!crate) throw new Error(`cargo fetched, but ${name} is not in ${cacheRoot}`)
  return crate
}

if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === version && appliedPatches() === wantedPatches) {
  trim()
  console.log(`msquic ${version}: sources present in deps/msquic/source`)
} else {
  const fromArchive = existsSync(archive)
  if (!fromArchive) requireCargo()
  const work = mkdtempSync(join(tmpdir(), 'node-msquic-fetch-'))
  try {
    unpack(fromArchive ? archive : fetchCrate(work), work)
    trim()
    // The npm tarball's archive was packed from patched sources, and says which patches.
    if (appliedPatches() !== wantedPatches) {
      if (appliedPatches() !== '') throw new Error(`msquic ${version}: the sources carry other patches (${appliedPatches()}); remove deps/msquic/source and the archive`)
      applyPatches(source, patchList)
      writeFileSync(patchStamp, wantedPatches + '\n')
      if (patchList.length > 0) console.log(`msquic ${version}: applied ${patchList.map(p => p.name).join(', ')}`)
    }
    writeFileSync(stamp, version + '\n')
    console.log(`msquic ${version}: unpacked ${fromArchive ? basename(archive) : 'the crate'} into deps/msquic/source`)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

if (process.argv.includes('--archive')) {
  for (const old of readdirSync(deps).filter(name => name.endsWith('.tar.gz'))) rmSync(join(deps, old))
  execFileSync('tar', ['czf', archive, '-C', deps, 'source'])
  console.log(`msquic ${version}: packed the trimmed sources into deps/msquic/${basename(archive)}`)
}
