#!/usr/bin/env node
// The build step of `npm run prebuild`. prebuildify builds by running `node-gyp rebuild --target=…
// --release` and then takes (strips, renames and moves) the .node file in build/Release; this project
// builds with CMake, so prebuildify is pointed here (--node-gyp) and its arguments are not needed:
// the addon is Node-API, one build for every Node version.
import { execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
try {
  execFileSync(process.execPath, [join(root, 'scripts', 'build-native.mjs'), '--clean'], { stdio: 'inherit' })
} catch (error) {
  process.exit(error.status ?? 1)
}
