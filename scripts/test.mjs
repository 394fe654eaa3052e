#!/usr/bin/env node
// The test command (`npm test`): builds what is missing (the addon, and the interop peers the chosen
// tests run), type-checks, then runs vitest and the libp2p compliance suites (mocha) on a supported
// Node (see modern-node.mjs). N-API keeps the one addon build valid for every version.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PEERS, buildPeers, inCi } from './build-interop-peers.mjs'
import { runOnModernNode } from './modern-node.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
// Asynchronous, so that the interop peers' builds (and their progress lines) go on meanwhile.
const run = (command, args) => new Promise(resolve => {
  spawn(command, args, { cwd: root, stdio: 'inherit' }).on('close', code => {
    if (code !== 0) process.exit(code ?? 1)
    resolve()
  })
})
// Filters (test file names) choose what runs; `compliance` names the mocha suites below.
const filters = process.argv.slice(2).filter(arg => !arg.startsWith('-'))

// The interop peers the chosen test files run, built before vitest starts (the tests never build):
// a first run on a fresh machine compiles quic-go, quinn, aioquic's venv and go-libp2p for a few minutes.
const chosen = file => filters.length === 0 || filters.some(filter => join(root, file).includes(filter) || join(root, file).includes(resolve(filter)))
const peers = buildPeers({ only: PEERS.filter(peer => peer.tests.some(chosen)).map(peer => peer.name) })

if (!existsSync(join(root, 'build', 'Release', 'node_msquic.node'))) await run(process.execPath, [join(root, 'scripts', 'build-native.mjs')])
// Type-check sources and tests, and keep dist/ current: child-process fixtures import it.
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--noEmit'])
await run(process.execPath, [tsc, '-p', 'tsconfig.build.json'])

// One line per test file whose peer cannot be built here: why, and the command that runs it.
const skipped = []
const unbuilt = []
for (const peer of await peers) {
  if (peer.state === 'failed') {
    console.error(`interop peers: ${peer.name} failed to build: ${peer.detail}`)
    unbuilt.push(peer.name)
  }
  if (peer.state !== 'no-toolchain') continue
  for (const file of PEERS.find(p => p.name === peer.name).tests.filter(chosen)) {
    if (!inCi) skipped.push(file)
    console.log(inCi
      ? `interop: ${file} will fail: ${peer.detail}, and CI runs every interop suite`
      : `interop: skipping ${file}: ${peer.detail}; once it is, \`npm test -- ${file}\` builds the ${peer.name} peer and runs it`)
  }
}

const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs')
const report = join(root, 'build', 'test-results.json')
rmSync(report, { force: true })
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
// One plain closing line, whatever the reporters printed above. A peer that failed to build fails the
// run (its suites were skipped, or failed in CI); one whose toolchain is missing does not.
const notes = []
if (skipped.length > 0) notes.push(`${skipped.length} interop ${skipped.length === 1 ? 'file' : 'files'} skipped for a missing toolchain`)
if (unbuilt.length > 0) notes.push(`interop peers that failed to build: ${unbuilt.join(', ')}`)
console.log(`tests: ${passed} passed, ${failed} failed${notes.length > 0 ? ` (${notes.join('; ')}: see above)` : ''}`)
process.exit(unbuilt.length > 0 && status === 0 ? 1 : status)
