#!/usr/bin/env node
// The test command (`npm test`): builds what is missing, type-checks, then runs vitest and the
// libp2p compliance suites (mocha) on a supported Node (see modern-node.mjs). N-API keeps the one
// addon build valid for every version.
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
// Filters (test file names) choose what runs; `compliance` names the mocha suites below.
const filters = process.argv.slice(2).filter(arg => !arg.startsWith('-'))
const namesCompliance = (filter) => filter.includes('compliance')
let status = 0
let passed = 0
let failed = 0
if (filters.length === 0 || !filters.every(namesCompliance)) {
  const args = [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)]
  status = runOnModernNode(args, { cwd: root })
  if (existsSync(report)) {
    const results = JSON.parse(readFileSync(report, 'utf8'))
    passed += results.numPassedTests
    failed += results.numFailedTests
    if (results.numTotalTests === 0) status = 1
  }
}

// @libp2p/interface-compliance-tests (test/compliance/*.spec.mjs) under mocha: its suites use
// mocha's `this.skip()`/`this.timeout()`. Runs with the whole suite, or when a filter names it.
if (filters.length === 0 || filters.some(namesCompliance)) {
  const mocha = join(root, 'node_modules', 'mocha', 'bin', 'mocha.js')
  const mochaReport = join(root, 'build', 'compliance-results.json')
  rmSync(mochaReport, { force: true })
  const mochaStatus = runOnModernNode([mocha, '--exit', '--reporter', join(root, 'test', 'compliance', 'reporter.cjs'), '--reporter-option', `output=${mochaReport}`, 'test/compliance/*.spec.mjs'], { cwd: root })
  if (mochaStatus !== 0) status = status === 0 ? mochaStatus : status
  if (existsSync(mochaReport)) {
    const { stats } = JSON.parse(readFileSync(mochaReport, 'utf8'))
    passed += stats.passes
    failed += stats.failures
    if (stats.tests === 0) status = 1
  } else {
    status = status === 0 ? 1 : status
  }
}
// One plain closing line, whatever the reporters printed above.
console.log(`tests: ${passed} passed, ${failed} failed`)
process.exit(status)
