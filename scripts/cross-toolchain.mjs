// Cross builds with zig (its clang, with the libc headers and libraries of every target built in):
// the targets the npm package carries prebuilt, and the CMake toolchain that builds MsQuic, quictls and
// the addon for one of them. Used by scripts/build-native.mjs --target=NAME (through
// scripts/prebuild-all.mjs); a user's source build never comes here: it uses the host compiler.
// zig comes from PyPI (the ziglang wheel), installed once into a venv in the cross cache.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

export const ZIG_VERSION = '0.17.1'

/**
 * The prebuilt targets. `zig` is zig's target triple: the glibc ones are built against glibc 2.28
 * (the floor of Node 22 and 24's own Linux builds), so the addon loads wherever official Node runs.
 * `processor` is CMake's CMAKE_SYSTEM_PROCESSOR, `arch` and `libc` name the file the way
 * node-gyp-build looks for it (prebuilds/linux-ARCH/node-msquic.LIBC.node).
 */
export const targets = {
  'linux-x64-glibc': { zig: 'x86_64-linux-gnu.2.28', processor: 'x86_64', arch: 'x64', libc: 'glibc' },
  'linux-x64-musl': { zig: 'x86_64-linux-musl', processor: 'x86_64', arch: 'x64', libc: 'musl' },
  'linux-arm64-glibc': { zig: 'aarch64-linux-gnu.2.28', processor: 'aarch64', arch: 'arm64', libc: 'glibc' },
  'linux-arm64-musl': { zig: 'aarch64-linux-musl', processor: 'aarch64', arch: 'arm64', libc: 'musl' }
}

/** Where cross-build tools and test runtimes live: outside the clone, reused by every clone. */
export function crossCache () {
  const dir = process.env.NODE_MSQUIC_CROSS_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'node-msquic-cross')
  mkdirSync(dir, { recursive: true })
  return dir
}

/** The zig binary: $NODE_MSQUIC_ZIG, else the pinned ziglang wheel in a venv of the cross cache (installed once). */
export function zigPath () {
  if (process.env.NODE_MSQUIC_ZIG !== undefined) return process.env.NODE_MSQUIC_ZIG
  const venv = join(crossCache(), `zig-${ZIG_VERSION}`)
  const python = join(venv, 'bin', 'python')
  const locate = () => execFileSync(python, ['-c', 'import ziglang, os; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))'],
    { encoding: 'utf8' }).trim()
  try {
    return locate()
  } catch {}
  console.log(`cross: installing zig ${ZIG_VERSION} (PyPI ziglang) into ${venv}`)
  execFileSync('python3', ['-m', 'venv', '--clear', venv], { stdio: 'inherit' })
  execFileSync(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', `ziglang==${ZIG_VERSION}`], { stdio: 'inherit' })
  return locate()
}

/**
 * Writes compiler wrappers and a CMake toolchain file for `name` into `dir`; returns the toolchain
 * file. A CMake compiler path cannot carry zig's `cc -target …` arguments, hence one small script per
 * tool. MsQuic builds quictls with its own Configure: for arm64 it is given the wrappers as a GNU
 * cross prefix (GNU_MACHINE: `<prefix>-gcc`, `-ar`, `-ranlib`, …), for x64 it runs `config CC=…`
 * (right for the host's architecture), so both see the same zig target.
 */
export function writeToolchain (name, dir) {
  const target = targets[name]
  if (target === undefined) throw new Error(`unknown target ${name}; known: ${Object.keys(targets).join(', ')}`)
  const zig = zigPath()
  const zigCache = join(crossCache(), 'zig-cache')
  mkdirSync(dir, { recursive: true })
  // zig's own caches (libc, libc++ per target: minutes the first time) outside the clone.
  const header = `#!/bin/sh\nexport ZIG_GLOBAL_CACHE_DIR='${zigCache}' ZIG_LOCAL_CACHE_DIR='${zigCache}'\n`
  // Rewritten only when different: the build reconfigures when its toolchain file changes.
  const write = (file, text, mode = 0o644) => {
    if (!existsSync(file) || readFileSync(file, 'utf8') !== text) writeFileSync(file, text, { mode })
  }
  const tool = (file, command) => write(join(dir, file), `${header}exec '${zig}' ${command} "$@"\n`, 0o755)
  const prefix = join(dir, `zig-${target.zig}`)
  for (const [suffix, command] of [['cc', `cc -target ${target.zig}`], ['c++', `c++ -target ${target.zig}`], ['ar', 'ar'], ['ranlib', 'ranlib']]) {
    tool(suffix, command)
  }
  // The names quictls' Configure puts after a cross prefix (CC is "gcc" in its linux-* targets).
  for (const [suffix, command] of [['gcc', `cc -target ${target.zig}`], ['g++', `c++ -target ${target.zig}`], ['ar', 'ar'], ['ranlib', 'ranlib']]) {
    tool(`zig-${target.zig}-${suffix}`, command)
  }
  // musl's CMSG_NXTHDR compares a signed with an unsigned value; clang reports that inside MsQuic's
  // datapath, which builds with -Werror. A warning, not an error (it must precede MsQuic's -Werror).
  const muslFlags = target.libc === 'musl' ? 'set(NODE_MSQUIC_CROSS_C_FLAGS "-Wno-error=sign-compare")\n' : ''
  const toolchain = join(dir, 'toolchain.cmake')
  write(toolchain, `# Written by scripts/cross-toolchain.mjs for ${name} (zig ${ZIG_VERSION}, -target ${target.zig}).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${target.processor})
set(CMAKE_C_COMPILER "${join(dir, 'cc')}")
set(CMAKE_CXX_COMPILER "${join(dir, 'c++')}")
set(CMAKE_AR "${join(dir, 'ar')}" CACHE FILEPATH "" FORCE)
set(CMAKE_RANLIB "${join(dir, 'ranlib')}" CACHE FILEPATH "" FORCE)
# cmake/msquic.cmake: the target goes into MsQuic's cache key; GNU_MACHINE is quictls' cross prefix.
set(NODE_MSQUIC_CROSS_TRIPLE "${target.zig}")
set(GNU_MACHINE "${prefix}")
${muslFlags}`)
  return toolchain
}
