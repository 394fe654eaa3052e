#!/usr/bin/env node
// Builds the native harness (native/stress) with plain CMake: build/harness/quic_harness, or with
// --sanitize=address,undefined a sanitizer build in build/harness-address-undefined/ (MsQuic included,
// cached separately by cmake/msquic.cmake). Prints the binary's path.
import { execFileSync } from 'node:child_process'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const sanitize = process.argv.find(a => a.startsWith('--sanitize='))?.slice('--sanitize='.length) ?? ''
const dir = join(root, 'build', sanitize ? `harness-${sanitize.replace(/,/g, '-')}` : 'harness')
execFileSync(process.execPath, [join(root, 'scripts', 'fetch-msquic.mjs')], { stdio: 'inherit' })
const generator = (() => { try { execFileSync('ninja', ['--version'], { stdio: 'ignore' }); return ['-G', 'Ninja'] } catch { return [] } })()
execFileSync('cmake', ['-S', root, '-B', dir, ...generator, '-DNODE_MSQUIC_STRESS=ON', `-DNODE_MSQUIC_SANITIZE=${sanitize}`,
  `-DCMAKE_BUILD_TYPE=${sanitize ? 'RelWithDebInfo' : 'Release'}`], { stdio: ['ignore', 'ignore', 'inherit'] })
execFileSync('cmake', ['--build', dir, '--target', 'quic_harness', '--parallel', String(cpus().length)], { stdio: ['ignore', 'ignore', 'inherit'] })
console.log(join(dir, 'quic_harness'))
