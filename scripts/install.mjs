#!/usr/bin/env node
// npm's install step. When the addon the package's loader picks (dist/native.js: a local build, else a
// prebuild for this platform, architecture and libc, musl told from glibc even off Alpine) loads
// here, there is nothing to do: no compiler is needed. Otherwise (no prebuild fits, or a clone before
// its first build), or when asked to (npm_config_build_from_source=true), it builds from source with
// scripts/build-native.mjs, from the MsQuic sources the package carries.
import { execFileSync } from 'node:child_process'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const fromSource = (process.env.npm_config_build_from_source ?? '').split(',')
  .some(value => value === 'true' || value === 'node-msquic')

async function loadable () {
  try {
    return (await import('../dist/native.js')).addonFile
  } catch (error) {
    console.log(`node-msquic: no prebuilt addon loads here (${error.message.trim().split('\n')[0]})`)
    return undefined
  }
}

const found = fromSource ? undefined : await loadable()
if (found !== undefined) {
  console.log(`node-msquic: using ${relative(root, found)}`)
} else {
  console.log('node-msquic: building the addon from source')
  try {
    execFileSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit' })
  } catch (error) {
    process.exit(error.status ?? 1)
  }
}
