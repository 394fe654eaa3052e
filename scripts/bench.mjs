#!/usr/bin/env node
// `npm run bench [-- --smoke] [-- --only=echo]`: builds what is missing, then runs bench/run.mjs
// on a supported Node (see modern-node.mjs).
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
process.exit(runOnModernNode([join(root, 'bench', 'run.mjs'), ...process.argv.slice(2)], { cwd: root }))
