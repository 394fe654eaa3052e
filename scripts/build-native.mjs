#!/usr/bin/env node
// Builds the addon from source with CMake: fetches MsQuic's sources if needed (scripts/fetch-msquic.mjs),
// then configures and builds CMakeLists.txt, which builds MsQuic once into a cache outside the clone
// (cmake/msquic.cmake) and links it into build/Release/node_msquic.node. Needs cmake, a C/C++
// compiler, make (or ninja) and perl; the Node-API headers come from npm packages, so no node-gyp or
// cmake-js. With --sanitize=address,undefined it builds a sanitizer build (MsQuic included) into
// build-sanitize/Release/ instead; with --clean it rebuilds the addon from scratch. With
// --target=NAME (or NODE_MSQUIC_TARGET=NAME; names in scripts/cross-toolchain.mjs, e.g.
// linux-arm64-musl) it cross-builds with zig into build-NAME/Release/ (MsQuic too, cached per target);
// scripts/prebuild-all.mjs builds the prebuilds that way. Other arguments (-DNAME=VALUE) go to CMake's
// configure step.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const clean = args.includes('--clean')
const sanitize = args.find(a => a.startsWith('--sanitize='))?.slice('--sanitize='.length)
const target = args.find(a => a.startsWith('--target='))?.slice('--target='.length) ?? process.env.NODE_MSQUIC_TARGET
if (sanitize !== undefined && target !== undefined) throw new Error('build-native: --sanitize and --target do not go together')
const out = join(root, sanitize !== undefined ? 'build-sanitize' : target !== undefined ? `build-${target}` : 'build')
const extra = args.filter(a => a !== '--clean' && !a.startsWith('--sanitize=') && !a.startsWith('--target='))
const addon = join(out, 'Release', 'node_msquic.node')

const started = Date.now()
execFileSync(process.execPath, [join(root, 'scripts', 'fetch-msquic.mjs')], { stdio: 'inherit' })

const require = createRequire(import.meta.url)
const packageDir = name => dirname(require.resolve(`${name}/package.json`))
// Loaded only for cross builds: the npm package does not carry the cross-build script.
const toolchain = target === undefined ? undefined : (await import('./cross-toolchain.mjs')).writeToolchain(target, join(out, 'toolchain'))
const has = command => { try { execFileSync(command, ['--version'], { stdio: 'ignore' }); return true } catch { return false } }
// The generator is chosen once per build folder; CMake refuses a different one later.
const generator = !existsSync(join(out, 'CMakeCache.txt')) && has('ninja') ? ['-G', 'Ninja'] : []
const configure = [
  '-S', root, '-B', out, ...generator,
  `-DCMAKE_BUILD_TYPE=${sanitize === undefined ? 'Release' : 'RelWithDebInfo'}`,
  `-DCMAKE_LIBRARY_OUTPUT_DIRECTORY=${join(out, 'Release')}`,
  `-DNODE_API_HEADERS_DIR=${require('node-api-headers').include_dir}`,
  `-DNODE_ADDON_API_DIR=${packageDir('node-addon-api')}`,
  ...(sanitize === undefined ? [] : [`-DNODE_MSQUIC_SANITIZE=${sanitize}`]),
  ...(toolchain === undefined ? [] : [`-DCMAKE_TOOLCHAIN_FILE=${toolchain}`]),
  ...extra
]
try {
  execFileSync('cmake', configure, { cwd: root, stdio: 'inherit' })
  execFileSync('cmake', ['--build', out, '--target', 'node_msquic', '--parallel', String(availableParallelism()),
    ...(clean ? ['--clean-first'] : [])], { cwd: root, stdio: 'inherit' })
} catch (error) {
  console.error(`node-msquic: the source build failed (${error.message.split('\n')[0]}).\n` +
    'It needs cmake >= 3.20, a C/C++ compiler, make (or ninja) and perl.')
  process.exit(1)
}
console.log(`node-msquic: addon built in ${((Date.now() - started) / 1000).toFixed(1)} s: ${addon}`)
