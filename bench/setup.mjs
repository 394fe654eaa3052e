#!/usr/bin/env node
// Connection setup, 0-RTT and libp2p streams against the alternatives (issue 24), every figure
// from this invocation: the same workloads run `rounds` times, interleaved (round 1 of everything,
// then round 2...), each measurement in a process of its own (bench/child.mjs, or the native
// harness); a figure is the median of its rounds, and a ratio is taken between medians of the
// same run. Writes the table into BENCHMARKS.md between the setup markers. `--smoke`: tiny sizes,
// one round, and a failure of ours (error, hang, failed operation) fails the run (CI).
//   raw        native harness | node-msquic: handshakes (new connection, closed) at c = 1 and 32;
//              full against resumed; one request on an open, a new, a resumed and a 0-RTT connection
//   libp2p     dial + close and dial + identify + close, one at a time and from 8 dialers, over
//              node-msquic (resumption on, the default, and off), @chainsafe/libp2p-quic and
//              TCP + noise + yamux; echo of 64 B on new streams at c = 1, 10, 100 against TCP
//   request    the request path against the native echo at c = 100
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runOnModernNode } from '../scripts/modern-node.mjs'
import { writeMarkedSection } from './sections.mjs'
import { runChild } from './lib.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
if (Number(process.versions.node.split('.')[0]) < 22) process.exit(runOnModernNode([fileURLToPath(import.meta.url), ...process.argv.slice(2)], { cwd: root }))
const smoke = process.argv.includes('--smoke')
const size = smoke
  ? { rounds: 1, handshakes: 40, libp2p: 20, setup: 10, requests: 20, echo: 200, request: 2000, timeoutMs: 30_000 }
  : { rounds: 3, handshakes: 1000, libp2p: 500, setup: 250, requests: 300, echo: 5000, request: 50_000, timeoutMs: 60_000 }
const LIBP2P = ['libp2p-msquic', 'libp2p-msquic-full', 'chainsafe', 'libp2p-tcp']
const LABEL = { 'libp2p-msquic': 'node-msquic', 'libp2p-msquic-full': 'node-msquic, no resumption', chainsafe: 'chainsafe', 'libp2p-tcp': 'TCP + noise + yamux' }

const plan = []
for (const concurrency of [1, 32]) {
  for (const impl of ['native', 'node-msquic']) plan.push({ impl, workload: 'handshakes', params: { connections: size.handshakes * (concurrency === 1 ? 1 : 2), concurrency, timeoutMs: size.timeoutMs } })
  plan.push({ impl: 'node-msquic', workload: 'resumed', params: { connections: size.handshakes * (concurrency === 1 ? 1 : 2), concurrency, timeoutMs: size.timeoutMs } })
}
plan.push({ impl: 'node-msquic', workload: 'earlyRequest', params: { requests: size.requests, timeoutMs: size.timeoutMs } })
for (const concurrency of [1, 8]) {
  for (const impl of LIBP2P) plan.push({ impl, workload: 'handshakes', params: { connections: size.libp2p, concurrency, timeoutMs: size.timeoutMs } })
  for (const impl of LIBP2P) plan.push({ impl, workload: 'setup', params: { connections: size.setup, concurrency, timeoutMs: size.timeoutMs } })
}
for (const concurrency of [1, 10, 100]) {
  for (const impl of ['libp2p-msquic', 'libp2p-tcp']) plan.push({ impl, workload: 'echo', params: { streams: size.echo, concurrency, size: 64, timeoutMs: size.timeoutMs } })
}
plan.push({ impl: 'native', workload: 'echo', params: { streams: size.request, concurrency: 100, size: 64, timeoutMs: size.timeoutMs } })
plan.push({ impl: 'node-msquic', workload: 'request', params: { streams: size.request, concurrency: 100, size: 64, timeoutMs: size.timeoutMs } })

console.log('bench: building the native harness')
const harness = execFileSync(process.execPath, [join(root, 'scripts', 'build-harness.mjs')], { encoding: 'utf8' }).trim().split('\n').pop()

function command ({ impl, workload, params }) {
  if (impl !== 'native') return [process.execPath, ['--expose-gc', join(root, 'bench', 'child.mjs'), impl, workload, JSON.stringify(params)]]
  const args = ['bench', workload]
  for (const [key, value] of Object.entries(params)) args.push(key === 'timeoutMs' ? '--timeout-ms' : `--${key}`, String(value))
  return [harness, args]
}

const load = () => loadavg().map(l => l.toFixed(1)).join(', ')
const loadAtStart = load()
const results = new Map(plan.map(entry => [entry, []]))
for (let round = 1; round <= size.rounds; round++) {
  for (const [i, entry] of plan.entries()) {
    process.stdout.write(`[round ${round}/${size.rounds}, ${i + 1}/${plan.length}] ${entry.impl} ${entry.workload} ${JSON.stringify(entry.params)} `)
    const [file, args] = command(entry)
    const result = await runChild(file, args, { cwd: root, limitMs: size.timeoutMs + 60_000 })
    results.get(entry).push(result)
    console.log(result.error ?? JSON.stringify(result.metrics))
  }
}

const fmt = n => n === undefined ? '—' : Math.round(n).toLocaleString('en-US')
const ms = us => us === undefined ? '—' : `${(us / 1000).toFixed(2)} ms`
const median = values => { const v = values.filter(x => x !== undefined).sort((a, b) => a - b); return v.length === 0 ? undefined : v[Math.floor((v.length - 1) / 2)] }
const find = (impl, workload, match = () => true) => plan.find(e => e.impl === impl && e.workload === workload && match(e.params))
/** The median over rounds of `pick(metrics)`; undefined if any round failed. */
function figure (entry, pick) {
  const runs = entry === undefined ? [] : results.get(entry)
  if (runs.length === 0 || runs.some(r => r.error !== undefined || r.metrics?.hung === true)) return undefined
  return median(runs.map(r => pick(r.metrics)))
}
const ratio = (a, b) => a === undefined || b === undefined || b === 0 ? '—' : `${(a / b).toFixed(2)}×`
const rate = m => m.connectionsPerSecond ?? m.streamsPerSecond

const lines = []
const targets = []
const target = (name, met, detail) => targets.push(`- ${met === true ? 'met' : met === false ? '**not met**' : 'not measured'}: ${name}: ${detail}`)

lines.push('### Raw QUIC: handshakes (connect, then close) against the native harness', '',
  '| concurrency | native | node-msquic | ours / native | full (resumption test) | resumed | resumed / full |', '|---|---|---|---|---|---|---|')
for (const c of [1, 32]) {
  const native = figure(find('native', 'handshakes', p => p.concurrency === c), m => m.connectionsPerSecond)
  const ours = figure(find('node-msquic', 'handshakes', p => p.concurrency === c), m => m.connectionsPerSecond)
  const resumedEntry = find('node-msquic', 'resumed', p => p.concurrency === c)
  const full = figure(resumedEntry, m => m.fullConnectionsPerSecond)
  const resumed = figure(resumedEntry, m => m.connectionsPerSecond)
  lines.push(`| ${c} | ${fmt(native)}/s | ${fmt(ours)}/s | ${ratio(ours, native)} | ${fmt(full)}/s | ${fmt(resumed)}/s | ${ratio(resumed, full)} |`)
  target(`raw handshakes ≥ 85% of native at c=${c}`, ours === undefined || native === undefined ? undefined : ours >= 0.85 * native, ratio(ours, native))
  target(`resumed ≥ 1.5× full at c=${c}`, resumed === undefined || full === undefined ? undefined : resumed >= 1.5 * full, ratio(resumed, full))
}

const early = find('node-msquic', 'earlyRequest')
lines.push('', '### One 64-byte request, from its start to the reply (one at a time, the four kinds interleaved)', '',
  '| connection | p50 | p99 | max | p50 / established |', '|---|---|---|---|---|')
const established = figure(early, m => m.established.p50Us)
for (const [kind, label] of [['established', 'already open'], ['full', 'new, full handshake'], ['resumed', 'new, resumed (request once connected)'], ['zeroRtt', 'new, resumed, request as 0-RTT data']]) {
  const p50 = figure(early, m => m[kind].p50Us)
  lines.push(`| ${label} | ${ms(p50)} | ${ms(figure(early, m => m[kind].p99Us))} | ${ms(figure(early, m => m[kind].maxUs))} | ${ratio(p50, established)} |`)
}
const zero = figure(early, m => m.zeroRtt.p50Us)
target('a 0-RTT request within 1.2× of one on an open connection (p50)', zero === undefined || established === undefined ? undefined : zero <= 1.2 * established, ratio(zero, established))

lines.push('', '### libp2p connection setup (connections/s)', '',
  `| workload | ${LIBP2P.map(i => LABEL[i]).join(' | ')} | ours / chainsafe | ours / TCP |`, `|---|${LIBP2P.map(() => '---|').join('')}---|---|`)
for (const [workload, label] of [['handshakes', 'dial + close'], ['setup', 'dial + identify + close']]) {
  for (const c of [1, 8]) {
    const values = LIBP2P.map(impl => figure(find(impl, workload, p => p.concurrency === c), m => m.connectionsPerSecond))
    const [ours, , chainsafe, tcp] = values
    lines.push(`| ${label}, ${c === 1 ? 'one at a time' : `${c} dialers`} | ${values.map(v => fmt(v)).join(' | ')} | ${ratio(ours, chainsafe)} | ${ratio(ours, tcp)} |`)
    target(`libp2p ${label} ≥ 1.2× chainsafe, c=${c}`, ours === undefined || chainsafe === undefined ? undefined : ours >= 1.2 * chainsafe, ratio(ours, chainsafe))
    target(`libp2p ${label} ≥ 1.5× TCP + noise + yamux, c=${c}`, ours === undefined || tcp === undefined ? undefined : ours >= 1.5 * tcp, ratio(ours, tcp))
  }
}

lines.push('', '### libp2p echo, 64 B on a new stream each (streams/s, p50 / p99)', '',
  '| concurrency | node-msquic | TCP + noise + yamux | ours / TCP |', '|---|---|---|---|')
for (const c of [1, 10, 100]) {
  const [ours, tcp] = ['libp2p-msquic', 'libp2p-tcp'].map(impl => find(impl, 'echo', p => p.concurrency === c))
  const [o, t] = [ours, tcp].map(e => figure(e, rate))
  const cellOf = (e, v) => v === undefined ? `failed: ${results.get(e).find(r => r.error !== undefined || r.metrics?.hung)?.error ?? 'hang'}` : `${fmt(v)} (${ms(figure(e, m => m.p50Us))} / ${ms(figure(e, m => m.p99Us))})`
  lines.push(`| ${c} | ${cellOf(ours, o)} | ${cellOf(tcp, t)} | ${ratio(o, t)} |`)
  target(`libp2p echo ≥ TCP + noise + yamux at c=${c}`, o === undefined || t === undefined ? undefined : o >= t, ratio(o, t))
}

const nativeEcho = figure(find('native', 'echo'), rate)
const requestPath = figure(find('node-msquic', 'request'), rate)
lines.push('', '### The request path at c = 100 (64 B each way)', '', '| native echo | request path | request / native |', '|---|---|---|',
  `| ${fmt(nativeEcho)} streams/s | ${fmt(requestPath)} streams/s | ${ratio(requestPath, nativeEcho)} |`)
target('request path ≥ 60% of native at c=100', requestPath === undefined || nativeEcho === undefined ? undefined : requestPath >= 0.6 * nativeEcho, ratio(requestPath, nativeEcho))

const version = name => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version
const section = [
  '<!-- setup:begin -->',
  '## Connection setup, 0-RTT and libp2p streams (`node bench/setup.mjs`)',
  '',
  `Node ${process.versions.node}; libp2p ${version('libp2p')}; @chainsafe/libp2p-quic ${version('@chainsafe/libp2p-quic')}; ${new Date().toISOString().slice(0, 10)}; ${size.rounds} rounds interleaved, each figure the median of its rounds, every ratio between figures of this run${smoke ? ' (smoke sizes)' : ''}. Load average at the start: ${loadAtStart}; at the end: ${load()}. Loopback, both ends in one process; node-msquic's libp2p dials resume by default (a node dials the same listener again and again here), "no resumption" is \`sessionTickets: false\`, every dial a full handshake as chainsafe's.`,
  '',
  ...lines,
  '',
  'Targets (issue 24), as measured in this run:',
  '',
  ...targets,
  '<!-- setup:end -->'
].join('\n')
console.log(`\n${section}`)
const ours = [...results.entries()].filter(([entry]) => entry.impl !== 'chainsafe' && entry.impl !== 'libp2p-tcp')
const failures = ours.flatMap(([entry, runs]) => runs.filter(r => r.error !== undefined || r.metrics?.hung === true || (r.metrics?.errors ?? 0) > 0).map(r => `${entry.impl} ${entry.workload} ${JSON.stringify(entry.params)}: ${r.error ?? JSON.stringify(r.metrics)}`))
for (const failure of failures) console.error(`FAILED: ${failure}`)
if (failures.length > 0) process.exitCode = 1
if (!smoke) {
  writeMarkedSection(section)
}
