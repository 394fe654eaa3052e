#!/usr/bin/env node
// The libp2p transport against the alternative, one measurement per process (bench/child.mjs):
//   libp2p-msquic  js-libp2p on node-msquic/libp2p
//   chainsafe      js-libp2p on @chainsafe/libp2p-quic
//   node-msquic    this package without libp2p (the raw ceiling the libp2p layer is held to)
// Workloads: bulk on one stream (64 KiB sends), echo of 64 B on new streams at concurrency
// 1/10/100, connection setup (dial, close) at concurrency 1 and 32, the same with identify (and
// js-libp2p over TCP + noise + yamux for reference), and negotiation overload. Prints a table and
// writes it into BENCHMARKS.md between the libp2p markers. `--smoke`: tiny sizes, and a failure
// (error, hang or failed operation) of node-msquic with or without libp2p fails the run (CI);
// chainsafe's hangs are reported, not failed. Run after `npm run build:ts`: node bench/libp2p.mjs
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runOnModernNode } from '../scripts/modern-node.mjs'
import { writeMarkedSection } from './sections.mjs'
import { runChild } from './lib.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
if (Number(process.versions.node.split('.')[0]) < 22) process.exit(runOnModernNode([fileURLToPath(import.meta.url), ...process.argv.slice(2)], { cwd: root }))
const smoke = process.argv.includes('--smoke')
const IMPLS = ['libp2p-msquic', 'chainsafe', 'node-msquic']
// Connection setup with identify, against the reference TCP stack as well.
const SETUP_IMPLS = ['libp2p-msquic', 'chainsafe', 'libp2p-tcp']
const size = smoke
  ? { bulk: 8 * 2 ** 20, echo: [[1, 200], [10, 200], [100, 500]], handshakes: [[1, 20], [32, 64]], overload: [100], timeoutMs: 20_000 }
  : { bulk: 512 * 2 ** 20, echo: [[1, 10_000], [10, 10_000], [100, 10_000]], handshakes: [[1, 1000], [32, 2000]], overload: [100, 1000], timeoutMs: 60_000 }

const plan = []
for (const impl of IMPLS) plan.push({ impl, workload: 'bulk', params: { bytes: size.bulk, direction: 'up' } })
for (const [concurrency, streams] of size.echo) for (const impl of IMPLS) plan.push({ impl, workload: 'echo', params: { streams, concurrency, size: 64, timeoutMs: size.timeoutMs } })
for (const [concurrency, connections] of size.handshakes) for (const impl of IMPLS) plan.push({ impl, workload: 'handshakes', params: { connections, concurrency, timeoutMs: size.timeoutMs } })
for (const [concurrency, connections] of size.handshakes) for (const impl of SETUP_IMPLS) plan.push({ impl, workload: 'setup', params: { connections: Math.ceil(connections / 2), concurrency, timeoutMs: size.timeoutMs } })
// Negotiation overload through libp2p's own newStream()/handle(): streams at once to a 50 ms handler.
for (const streams of size.overload) for (const impl of IMPLS.slice(0, 2)) plan.push({ impl, workload: 'overload', params: { streams, handlerMs: 50, timeoutMs: 10_000 } })

async function measure (entry) {
  const args = ['--expose-gc', join(root, 'bench', 'child.mjs'), entry.impl, entry.workload, JSON.stringify(entry.params)]
  return { ...entry, ...(await runChild(process.execPath, args, { cwd: root, limitMs: size.timeoutMs + 60_000 })) }
}

const fmt = n => Math.round(n).toLocaleString('en-US')
const cell = r => {
  if (r.error !== undefined) return `error: ${r.error}`
  const m = r.metrics
  if (r.workload === 'bulk') return `${fmt(m.mibPerSecond)} MiB/s`
  if (r.workload === 'overload') return m.hung ? '**hang**' : `${m.ok} ok, ${m.busy} busy, ${m.timeout} timeouts, ${m.other} other; all done in ${m.seconds.toFixed(2)} s, p99 ${Math.round(m.p99Ms)} ms`
  if (r.workload === 'echo') return m.hung ? `**hang** after ${fmt(m.completed)}` : `${fmt(m.streamsPerSecond)} streams/s${m.errors > 0 ? `, ${m.errors} errors` : ''}`
  return m.hung ? `**hang** after ${fmt(m.completed)}` : `${fmt(m.connectionsPerSecond)} connections/s${m.errors > 0 ? `, ${m.errors} errors` : ''}`
}
const key = r => r?.metrics === undefined || r.metrics.hung ? undefined : r.workload === 'overload' ? 1 / r.metrics.seconds : r.workload === 'bulk' ? r.metrics.mibPerSecond : r.workload === 'echo' ? r.metrics.streamsPerSecond : r.metrics.connectionsPerSecond
const ratio = (a, b) => a === undefined || b === undefined ? '—' : b === 0 ? '∞' : `${(a / b).toFixed(2)}×`
const share = (a, b) => a === undefined || b === undefined ? '—' : `${Math.round(100 * a / b)}%`

const results = []
for (const [i, entry] of plan.entries()) {
  process.stdout.write(`[${i + 1}/${plan.length}] ${entry.workload} ${JSON.stringify(entry.params)} ${entry.impl} `)
  const result = await measure(entry)
  results.push(result)
  console.log(cell(result))
}

const rows = []
const groups = [['bulk up, one stream', r => r.workload === 'bulk'],
  ...size.echo.map(([c, n]) => [`echo 64 B, new streams, c=${c} ×${fmt(n)}`, r => r.workload === 'echo' && r.params.concurrency === c]),
  ...size.handshakes.map(([c, n]) => [`connection setup, c=${c} ×${fmt(n)}`, r => r.workload === 'handshakes' && r.params.concurrency === c]),
  ...size.handshakes.map(([c, n]) => [`connection setup with identify, c=${c} ×${fmt(Math.ceil(n / 2))} (third column: TCP + noise + yamux)`, r => r.workload === 'setup' && r.params.concurrency === c, SETUP_IMPLS]),
  ...size.overload.map(n => [`negotiation overload: ${fmt(n)} streams at once, 50 ms handler`, r => r.workload === 'overload' && r.params.streams === n])]
for (const [name, match, impls = IMPLS] of groups) {
  const [ours, theirs, raw] = impls.map(impl => results.find(r => r.impl === impl && match(r)))
  rows.push(`| ${name} | ${cell(ours)} | ${cell(theirs)} | ${raw === undefined ? '—' : cell(raw)} | ${ratio(key(ours), key(theirs))} | ${share(key(ours), key(raw))} |`)
}
const version = name => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version
const section = [
  '<!-- libp2p:begin -->',
  '## libp2p transport (`node bench/libp2p.mjs`)',
  '',
  `Node ${process.versions.node}; libp2p ${version('libp2p')}; @chainsafe/libp2p-quic ${version('@chainsafe/libp2p-quic')}; one run each${smoke ? ' (smoke sizes)' : ''}; ${new Date().toISOString().slice(0, 10)}. Connection setup is dial + close (no identify, as the chainsafe workload); "with identify" waits for identify on each connection before closing it, and its third and last columns are js-libp2p over TCP + noise + yamux and ours against it.`,
  '',
  '| workload | libp2p on node-msquic | libp2p on @chainsafe/libp2p-quic | node-msquic without libp2p | ours / chainsafe | ours / raw |',
  '|---|---|---|---|---|---|',
  ...rows,
  '<!-- libp2p:end -->'
].join('\n')
console.log('\n' + section)
const failures = results.filter(r => r.impl !== 'chainsafe' && (r.error !== undefined || r.metrics?.hung === true || (r.metrics?.errors ?? 0) > 0 || (r.metrics?.timeout ?? 0) > 0 || (r.metrics?.other ?? 0) > 0))
for (const r of failures) console.error(`FAILED: ${r.impl} ${r.workload} ${JSON.stringify(r.params)}: ${cell(r)}`)
if (failures.length > 0) process.exitCode = 1
if (!smoke) {
  writeMarkedSection(section)
}
