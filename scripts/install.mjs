#!/usr/bin/env node
// npm's install step. When the addon node-gyp-build would load (a local build, else a prebuild for
// this platform, architecture and libc) loads here, there is nothing to do: no compiler is needed.
// Otherwise, or when asked to (npm_config_build_from_source=true), it builds from source with
// scripts/build-native.mjs, from the MsQuic sources the package carries.
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const fromSource = (process.env.npm_config_build_from_source ?? '').split(',')
  .some(value => value === 'true' || value === 'node-msquic')

function loadable () {
  try {
    const path = require('node-gyp-build').resolve(root)
    require(path)
    return path
  } catch (error) {
    console.log(`node-msquic: no prebuilt addon loads here (${error.message.trim().split('\n')[0]})`)
    return undefined
  }
}

const found = fromSource ? undefined : loadable()
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
