#!/usr/bin/env node
// `npm run prebuild` (and so `npm pack`, through prepack): the prebuilt addons the npm package carries,
// one per target of scripts/cross-toolchain.mjs (linux x64 and arm64, glibc 2.28 and musl). For each:
// cross-builds it with zig (scripts/build-native.mjs --target=NAME into build-NAME/; MsQuic is cached
// per target outside the clone), strips it, runs scripts/check-prebuild.mjs on the stripped file, and
// only then puts it into prebuilds/linux-ARCH/node-msquic.LIBC.node, where node-gyp-build and the
// package's loader look. A check passes once per file in a clone: build-NAME/checked.json records the
// sha256 it passed on (and of the check scripts), so `npm pack` after a CI step that checked the same
// bytes does not run it again.
// With --only=NAME[,NAME] it builds those targets alone. Needs python3 (zig comes from PyPI), cmake,
// ninja or make, perl, patchelf and qemu-user, and binutils for aarch64 (its strip). Prints a table:
// each target's size, newest symbol versions, smoke runs and times.
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { targets } from './cross-toolchain.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const only = process.argv.find(arg => arg.startsWith('--only='))?.slice('--only='.length).split(',')
const names = only ?? Object.keys(targets)
for (const name of names) if (targets[name] === undefined) throw new Error(`unknown target ${name}`)
const strippers = { x64: 'strip', arm64: 'aarch64-linux-gnu-strip' }
// The tools the builds and checks run, and the Debian packages that bring them.
const tools = { readelf: 'binutils', strip: 'binutils', 'aarch64-linux-gnu-strip': 'binutils-aarch64-linux-gnu', patchelf: 'patchelf', 'qemu-aarch64': 'qemu-user' }
const missing = Object.entries(tools).filter(([tool]) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).error !== undefined)
if (missing.length > 0) {
  console.error(`prebuild: missing ${missing.map(([tool]) => tool).join(', ')}: apt-get install ${[...new Set(missing.map(([, pkg]) => pkg))].join(' ')}`)
  process.exit(1)
}
if (names.includes('linux-arm64-glibc') && !existsSync('/usr/aarch64-linux-gnu/lib/libstdc++.so.6')) {
  console.error('prebuild: the arm64 glibc check runs Node under qemu with Debian\'s arm64 libraries: apt-get install libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross')
  process.exit(1)
}
const seconds = since => Number(((Date.now() - since) / 1000).toFixed(1))
const started = Date.now()
const rows = []

for (const name of names) {
  const { arch, libc } = targets[name]
  const out = join(root, `build-${name}`)
  mkdirSync(out, { recursive: true })

  // The build's output goes to a log: a cold MsQuic build prints thousands of lines.
  const buildStarted = Date.now()
  const logFile = join(out, 'build.log')
  console.log(`prebuild ${name}: building (log: ${relative(root, logFile)})`)
  const build = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs'), `--target=${name}`], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 30 })
  writeFileSync(logFile, build.stdout + build.stderr)
  if (build.status !== 0) {
    console.error((build.stdout + build.stderr).split('\n').slice(-40).join('\n'))
    console.error(`prebuild ${name}: the build failed (${build.status ?? build.signal})`)
    process.exit(1)
  }
  const buildSeconds = seconds(buildStarted)

  // Stripped: no symbol table or debug info (zig emits DWARF by default), the same bytes every time.
  const stripped = join(out, `node-msquic.${libc}.node`)
  copyFileSync(join(out, 'Release', 'node_msquic.node'), stripped)
  execFileSync(strippers[arch], ['--strip-all', stripped])
  const sha256 = createHash('sha256').update(readFileSync(stripped)).digest('hex')
  // A check passed on these bytes with these checks: a changed check script runs again.
  const checks = createHash('sha256')
  for (const script of ['check-prebuild.mjs', 'smoke-prebuild.mjs', 'cross-runtimes.mjs', 'elf.mjs']) checks.update(readFileSync(join(root, 'scripts', script)))
  const checkId = `${sha256}:${checks.digest('hex').slice(0, 12)}`

  const stamp = join(out, 'checked.json')
  let record = existsSync(stamp) ? JSON.parse(readFileSync(stamp, 'utf8')) : undefined
  const checkStarted = Date.now()
  if (record?.checkId === checkId) {
    console.log(`prebuild ${name}: ${sha256.slice(0, 12)} already passed its checks in this clone`)
  } else {
    const check = spawnSync(process.execPath, [join(root, 'scripts', 'check-prebuild.mjs'), name, stripped, '--json'],
      { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    const lines = check.stdout.trim().split('\n')
    console.log(lines.slice(0, -1).join('\n'))
    if (check.status !== 0) {
      console.log(lines.at(-1))
      console.error(`prebuild ${name}: its checks failed: not shipped`)
      process.exit(1)
    }
    record = { ...JSON.parse(lines.at(-1)), sha256, checkId }
    writeFileSync(stamp, JSON.stringify(record, null, 2) + '\n')
  }

  const dir = join(root, 'prebuilds', `linux-${arch}`)
  mkdirSync(dir, { recursive: true })
  const shipped = join(dir, `node-msquic.${libc}.node`)
  copyFileSync(stripped, `${shipped}.tmp`)
  renameSync(`${shipped}.tmp`, shipped)
  rows.push({ name, file: relative(root, shipped), record, buildSeconds, checkSeconds: seconds(checkStarted) })
}

console.log('\nprebuild: target | file | MiB | needs at most | smoke runs | build s | check s')
for (const { name, file, record, buildSeconds, checkSeconds } of rows) {
  console.log(`prebuild: ${name} | ${file} | ${(record.bytes / 1024 / 1024).toFixed(2)} | ${record.ceiling} | ` +
    `${record.runs.map(run => `${run.system}: passed in ${run.seconds} s`).join('; ')} | ${buildSeconds} | ${checkSeconds}`)
}
console.log(`prebuild: ${rows.length} prebuilds built and checked in ${seconds(started)} s`)
