#!/usr/bin/env node
// The test command (`npm test`): builds what is missing, type-checks, then runs vitest on a
// supported Node (see modern-node.mjs). N-API keeps the one addon build valid for every version.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runOnModernNode } from './modern-node.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const run = (command, args) => {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' })
  if (result.status !== 0) process.exit(result.status ?? 1)
}

if (!existsSync(join(root, 'build', 'Release', 'node_msquic.node'))) run(process.execPath, [join(root, 'scripts', 'build-native.mjs')])
// Type-check sources and tests, and keep dist/ current: child-process fixtures import it.
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
run(process.execPath, [tsc, '-p', 'tsconfig.json', '--noEmit'])
run(process.execPath, [tsc, '-p', 'tsconfig.build.json'])

const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs')
const report = join(root, 'build', 'test-results.json')
rmSync(report, { force: true })
const args = [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)]
let status = runOnModernNode(args, { cwd: root })
// One plain closing line, whatever the reporter printed above.
if (existsSync(report)) {
  const results = JSON.parse(readFileSync(report, 'utf8'))
  console.log(`tests: ${results.numPassedTests} passed, ${results.numFailedTests} failed`)
  if (results.numTotalTests === 0) status = 1
}
process.exit(status)
