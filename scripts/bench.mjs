#!/usr/bin/env node
// `npm run bench [-- --smoke] [-- --only=echo]`: builds what is missing, then runs bench/run.mjs
// on a supported Node (see modern-node.mjs). `npm run bench:profile` runs bench/profile.mjs instead.
import { existsSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runOnModernNode } from './modern-node.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
if (!existsSync(join(root, 'build', 'Release', 'node_msquic.node'))) {
  spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit' })
}
spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
const profile = process.argv.includes('--profile')
const script = join(root, 'bench', profile ? 'profile.mjs' : 'run.mjs')
process.exit(runOnModernNode([script, ...process.argv.slice(2).filter(a => a !== '--profile')], { cwd: root }))
