#!/usr/bin/env node
// `npm run bench`: every workload, side by side, in one invocation:
//   native       the C++ harness on the same core (native/stress): the ceiling
//   node-msquic  this package
//   chainsafe    @chainsafe/libp2p-quic with libp2p (the Node QUIC alternative)
//   node-tls     node:tls over TCP (what most Node services use today)
// Each measurement runs in a process of its own. Writes BENCHMARKS.md.
// `--smoke` runs every benchmark once at a tiny size and checks only correctness (CI).
import { markedSections } from './sections.mjs'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem, release } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runChild } from './lib.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const smoke = process.argv.includes('--smoke')
const only = process.argv.find(a => a.startsWith('--only='))?.slice(7)
// Each figure is the median of this many runs (timings on a shared 2-core machine vary); a run
// that hangs or fails is reported as such at once, never retried away.
const repeat = Number(process.argv.find(a => a.startsWith('--repeat='))?.slice(9) ?? (smoke ? 1 : 3))
const IMPLS = ['native', 'node-msquic', 'chainsafe', 'node-tls']

const size = smoke
  ? { bulk: 4 * 2 ** 20, echo: [[1, 100], [10, 100], [100, 300]], handshakes: [[1, 10], [32, 64]], idle: 20, echoServer: 1000, timeoutMs: 10_000, negotiation: [[1, 20], [4, 100]] }
  : { bulk: 2 ** 30, echo: [[1, 10_000], [10, 20_000], [100, 100_000]], handshakes: [[1, 2000], [32, 4000]], idle: 1000, echoServer: 40_000, timeoutMs: 60_000, negotiation: [[1, 100], [10, 1000]] }
// Negotiation limits: the router's defaults, and none.
const LIMITS = { defaults: { perConnection: 8, overall: 64 }, off: { perConnection: null, overall: null } }
// Sizing the defaults: 1,000 streams over 10 connections, no handler delay, one limit at a time.
const SWEEP = [...[2, 4, 8, 16, 32, null].map(perConnection => ({ perConnection, overall: null })), ...[16, 32, 64, 128].map(overall => ({ perConnection: 16, overall }))]

const cases = []
for (const direction of ['up', 'down']) cases.push({ workload: 'bulk', params: { bytes: size.bulk, direction } })
for (const [concurrency, streams] of size.echo) cases.push({ workload: 'echo', params: { streams, concurrency, size: 64, timeoutMs: size.timeoutMs } })
// node-msquic's other echo paths, against the same native ceiling: the request path, and the
// Duplex written the common way (pipeline() and for await) with the listener's default settings.
const ECHO_PATHS = ['request', 'echoDefault']
for (const [concurrency, connections] of size.handshakes) cases.push({ workload: 'handshakes', params: { connections, concurrency, timeoutMs: size.timeoutMs } })
cases.push({ workload: 'idle', params: { connections: size.idle } })
const plan = cases.filter(c => only === undefined || c.workload === only).flatMap(c => IMPLS.map(impl => ({ impl, ...c })))
for (const workload of ECHO_PATHS) {
  if (only !== undefined && only !== 'echo') continue
  for (const [concurrency, streams] of size.echo) plan.push({ impl: 'node-msquic', workload, params: { streams, concurrency, size: 64, timeoutMs: size.timeoutMs } })
}
// node-msquic only: handshakes that resume a session (a ticket from an earlier connection).
for (const [concurrency, connections] of size.handshakes) {
  if (only === undefined || only === 'handshakes' || only === 'resumed') plan.push({ impl: 'node-msquic', workload: 'resumed', params: { connections, concurrency, timeoutMs: size.timeoutMs } })
}
// node-msquic only: an echo server on one thread against one spread over two worker threads.
for (const mode of ['single', 'workers']) {
  if (only === undefined || only === 'echo-server') plan.push({ impl: 'node-msquic', workload: 'echo-server', params: { mode, streams: size.echoServer } })
}
// node-msquic only: protocol negotiation under overload (ProtocolRouter + dialProtocol).
if (only === undefined || only === 'negotiation') {
  for (const [connections, streams] of size.negotiation) {
    for (const [name, limits] of Object.entries(LIMITS)) plan.push({ impl: 'node-msquic', workload: 'negotiation', params: { connections, streams, handlerMs: 50, limits: name, ...limits } })
  }
  if (!smoke) for (const limits of SWEEP) plan.push({ impl: 'node-msquic', workload: 'negotiation', params: { connections: 10, streams: 1000, handlerMs: 0, limits: 'sweep', ...limits } })
}

console.log('bench: building the native harness')
const harness = execFileSync(process.execPath, [join(root, 'scripts', 'build-harness.mjs')], { encoding: 'utf8' }).trim().split('\n').pop()

function command ({ impl, workload, params }) {
  if (workload === 'echo-server') return [process.execPath, [join(root, 'bench', 'multicore.mjs'), params.mode, String(params.streams)]]
  if (workload === 'negotiation') return [process.execPath, [join(root, 'bench', 'negotiation.mjs'), JSON.stringify(params)]]
  if (impl === 'native') {
    const args = ['bench', workload]
    for (const [key, value] of Object.entries(params)) {
      if (key === 'timeoutMs') args.push('--timeout-ms', String(value))
      else args.push(`--${key}`, String(value))
    }
    return [harness, args]
  }
  return [process.execPath, ['--expose-gc', join(root, 'bench', 'child.mjs'), impl, workload, JSON.stringify(params)]]
}

async function measure (entry) {
  const [file, args] = command(entry)
  const result = await runChild(file, args, { cwd: root, limitMs: (entry.params.timeoutMs ?? size.timeoutMs) + 60_000 })
  return result.error === undefined ? result : { ...entry, ...result }
}

const limitText = value => value === null ? '∞' : String(value)
const describe = ({ workload, params }) => workload === 'negotiation'
  ? `negotiation ${params.streams}/${params.connections}c ${limitText(params.perConnection)}/${limitText(params.overall)}`
  : workload === 'echo-server'
  ? `echo server, ${params.mode === 'workers' ? '2 workers' : '1 thread'}`
  : workload === 'bulk'
  ? `bulk ${params.direction} ${params.bytes / 2 ** 20} MiB`
  : workload === 'echo' || ECHO_PATHS.includes(workload) ? `${workload} c=${params.concurrency} x${params.streams}`
    : workload === 'handshakes' ? `handshakes c=${params.concurrency} x${params.connections}`
    : workload === 'resumed' ? `resumed handshakes c=${params.concurrency} x${params.connections}`
      : `idle x${params.connections}`

const headline = (r) => {
  if (r.error !== undefined) return `error: ${r.error}`
  if (r.skipped !== undefined) return r.skipped
  const m = r.metrics
  switch (r.workload) {
    case 'bulk': return `${m.mibPerSecond.toFixed(0)} MiB/s`
    case 'echo-server':
    case 'request':
    case 'echoDefault':
    case 'echo': return `${Math.round(m.streamsPerSecond)} streams/s, p50 ${Math.round(m.p50Us)} µs, p99 ${Math.round(m.p99Us)} µs` +
      (m.hung ? `, HUNG after ${m.completed}` : '') + (m.errors > 0 ? `, ${m.errors} errors` : '')
    case 'handshakes': return `${Math.round(m.connectionsPerSecond)} connections/s` + (m.hung ? ', HUNG' : '')
    case 'resumed': return `${Math.round(m.connectionsPerSecond)} resumed connections/s (${m.resumed} resumed), full ${Math.round(m.fullConnectionsPerSecond)}/s`
    case 'idle': return `${(m.bytesPerConnection / 1024).toFixed(1)} KiB per connection`
    case 'negotiation': return `${Math.round(m.streamsPerSecond)} streams/s, negotiated p50 ${m.p50Ms.toFixed(1)} ms, p99 ${m.p99Ms.toFixed(1)} ms, server peak ${m.serverPeak}` +
      (m.errors > 0 ? `, ${m.errors} failed (${m.busy} busy, ${m.timeouts} timeouts)` : '')
  }
}

// The key figure of each workload, for choosing the median run.
const KEY = { bulk: 'mibPerSecond', echo: 'streamsPerSecond', request: 'streamsPerSecond', echoDefault: 'streamsPerSecond', 'echo-server': 'streamsPerSecond', handshakes: 'connectionsPerSecond', resumed: 'connectionsPerSecond', idle: 'bytesPerConnection', negotiation: 'streamsPerSecond' }

const results = []
for (const [i, entry] of plan.entries()) {
  process.stdout.write(`[${i + 1}/${plan.length}] ${describe(entry).padEnd(26)} ${entry.impl.padEnd(12)} `)
  const runs = []
  for (let r = 0; r < repeat; r++) {
    const run = { ...entry, ...(await measure(entry)) }
    runs.push(run)
    if (run.error !== undefined || run.skipped !== undefined || run.metrics?.hung === true || (run.metrics?.errors ?? 0) > 0) break
  }
  const finished = runs.filter(r => r.metrics !== undefined && r.metrics.hung !== true).sort((a, b) => a.metrics[KEY[a.workload]] - b.metrics[KEY[b.workload]])
  const result = finished.length === runs.length ? finished[Math.floor(finished.length / 2)] : runs[runs.length - 1]
  result.runs = runs.length
  results.push(result)
  console.log(headline(result) + (runs.length > 1 ? ` (median of ${runs.length})` : ''))
}

// Smoke: our implementations must be correct at every size; the peers' hangs are reported only.
const problems = results.filter(r => r.impl !== 'chainsafe' && (r.error !== undefined || r.metrics?.hung === true || (r.metrics?.errors ?? 0) > 0 ||
  ((['echo', 'echo-server', 'negotiation', ...ECHO_PATHS].includes(r.workload)) && r.metrics?.completed !== r.params.streams) || (r.workload === 'handshakes' && r.metrics?.completed !== r.params.connections) ||
  (r.workload === 'resumed' && (r.metrics?.completed !== r.params.connections || r.metrics?.resumed !== r.params.connections))))
if (smoke) {
  writeFileSync(join(root, 'build', 'bench-smoke.json'), JSON.stringify(results, null, 2))
  console.log(problems.length === 0 ? 'bench smoke: every benchmark ran correctly' : `bench smoke: ${problems.length} problems`)
  process.exit(problems.length === 0 ? 0 : 1)
}

// The report.
const find = (impl, workload, match) => results.find(r => r.impl === impl && r.workload === workload && Object.entries(match).every(([k, v]) => r.params[k] === v))
const metric = (r, key) => r?.metrics?.[key]
// A hung run has no rate: its row says how far it got, and no ratio is drawn from it.
const hung = r => r?.metrics?.hung === true
const cell = (r, key, digits = 0) => r?.error !== undefined ? 'error' : r?.skipped !== undefined ? 'n/a' : metric(r, key) === undefined ? '' :
  hung(r) ? (KEY[r.workload] === key ? `**hang** after ${r.metrics.completed}` : '—') : Number(metric(r, key)).toLocaleString('en-US', { maximumFractionDigits: digits })
const rate = (r, key) => hung(r) ? undefined : metric(r, key)
const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0) ? `${(a / b * 100).toFixed(0)}%` : ''
const times = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0) ? `${(a / b).toFixed(1)}×` : ''
const version = (name) => { try { return JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version } catch { return '?' } }

// The run before this one, to print beside the new figures (no workload may get slower).
const lastRun = join(root, 'bench', 'last-run.json')
let previous = []
try { previous = JSON.parse(readFileSync(lastRun, 'utf8')) } catch {}

const lines = []
lines.push('# Benchmarks', '', '_Written by `npm run bench` (bench/run.mjs); every number below comes from that run._', '')
lines.push(`- Date: ${new Date().toISOString().slice(0, 10)}`)
lines.push(`- Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}`)
lines.push(`- Node ${process.versions.node}; MsQuic ${readFileSync(join(root, 'deps', 'msquic', 'VERSION'), 'utf8').trim()}; libp2p ${version('libp2p')}; @chainsafe/libp2p-quic ${version('@chainsafe/libp2p-quic')}`)
lines.push(`- Everything runs on loopback, client and server in one process; each measurement in a fresh process; each figure is the median of ${repeat} runs (a hang is reported at once).`)
lines.push('- native = the C++ harness in native/stress on the same core as the addon (no JS): the ceiling.')
lines.push('- node:tls has no streams: its "echo" is framed requests on one TLS connection, up to c in flight.', '')

lines.push('## Bulk: one stream, each direction', '', '| direction | native | node-msquic | chainsafe | node:tls | node-msquic / native | node-msquic / chainsafe |', '|---|---|---|---|---|---|---|')
for (const direction of ['up', 'down']) {
  const [n, m, c, t] = IMPLS.map(impl => find(impl, 'bulk', { direction }))
  lines.push(`| ${direction} (MiB/s) | ${cell(n, 'mibPerSecond')} | ${cell(m, 'mibPerSecond')} | ${cell(c, 'mibPerSecond')} | ${cell(t, 'mibPerSecond')} | ${ratio(metric(m, 'mibPerSecond'), metric(n, 'mibPerSecond'))} | ${times(metric(m, 'mibPerSecond'), metric(c, 'mibPerSecond'))} |`)
}
lines.push('', '## Echo: 64-byte request and response, a new bidirectional stream each, one connection', '',
  'node-msquic three ways: `request` is the request path (connection.request() against listener.serveRequests()); `Duplex` is the',
  'stream read to its end and written back (listener with 1,000 streams of credit); `Duplex, defaults` is the common way',
  '(pipeline(stream, stream) on the server, for await on the client) with the listener\'s default settings. "previous" is the',
  'same row in the run before this one (bench/last-run.json).', '',
  '| concurrency | streams | impl | streams/s | p50 µs | p99 µs | errors | events per stream | of native | previous streams/s |', '|---|---|---|---|---|---|---|---|---|---|')
const ECHO_ROWS = [['native', 'echo', 'native'], ['node-msquic', 'request', 'node-msquic request'], ['node-msquic', 'echo', 'node-msquic Duplex'],
  ['node-msquic', 'echoDefault', 'node-msquic Duplex, defaults'], ['chainsafe', 'echo', 'chainsafe'], ['node-tls', 'echo', 'node-tls']]
for (const [concurrency, streams] of size.echo) {
  const native = find('native', 'echo', { concurrency })
  for (const [impl, workload, label] of ECHO_ROWS) {
    const r = find(impl, workload, { concurrency })
    const before = previous.find(p => p.impl === impl && p.workload === workload && p.params?.concurrency === concurrency)
    lines.push(`| ${concurrency} | ${streams.toLocaleString('en-US')} | ${label} | ${cell(r, 'streamsPerSecond')} | ${cell(r, 'p50Us')} | ${cell(r, 'p99Us')} | ${r?.metrics?.errors ?? ''} | ${cell(r, 'eventsPerStream', 1)} | ${impl === 'native' ? '' : ratio(rate(r, 'streamsPerSecond'), rate(native, 'streamsPerSecond'))} | ${cell(before, 'streamsPerSecond')} |`)
  }
}
lines.push('', '## Handshakes: a new connection per operation', '', '| concurrency | native | node-msquic | chainsafe | node:tls | node-msquic / native |', '|---|---|---|---|---|---|')
for (const [concurrency] of size.handshakes) {
  const [n, m, c, t] = IMPLS.map(impl => find(impl, 'handshakes', { concurrency }))
  lines.push(`| ${concurrency} (connections/s) | ${cell(n, 'connectionsPerSecond')} | ${cell(m, 'connectionsPerSecond')} | ${cell(c, 'connectionsPerSecond')} | ${cell(t, 'connectionsPerSecond')} | ${ratio(metric(m, 'connectionsPerSecond'), metric(n, 'connectionsPerSecond'))} |`)
}
lines.push('', 'Resumed: node-msquic clients passing a session ticket (`connect({ sessionTicket })`) to a server with `sessionTickets: true`; "full" is the same server and clients without the ticket, measured in the same process just before.', '',
  '| concurrency | full (connections/s) | resumed (connections/s) | resumed / full | handshakes that resumed |', '|---|---|---|---|---|')
for (const [concurrency, connections] of size.handshakes) {
  const r = find('node-msquic', 'resumed', { concurrency })
  lines.push(`| ${concurrency} | ${cell(r, 'fullConnectionsPerSecond')} | ${cell(r, 'connectionsPerSecond')} | ${ratio(metric(r, 'connectionsPerSecond'), metric(r, 'fullConnectionsPerSecond'))} | ${r?.metrics?.resumed ?? ''} of ${connections.toLocaleString('en-US')} |`)
}
lines.push('', `## Idle connections: ${size.idle.toLocaleString('en-US')} open, both ends in one process`, '', '| | native | node-msquic | chainsafe | node:tls |', '|---|---|---|---|---|')
{
  const [n, m, c, t] = IMPLS.map(impl => find(impl, 'idle', {}))
  const kib = r => r?.skipped !== undefined ? 'n/a (one connection per peer)' : r?.error !== undefined ? 'error' : metric(r, 'bytesPerConnection') === undefined ? '' : (metric(r, 'bytesPerConnection') / 1024).toFixed(1)
  lines.push(`| KiB per connection | ${kib(n)} | ${kib(m)} | ${kib(c)} | ${kib(t)} |`)
}
lines.push('', `## Echo server on worker threads (node-msquic): ${size.echoServer.toLocaleString('en-US')} streams from 8 connections, 200 in flight, client in another process`, '',
  '| server | streams/s | p50 µs | p99 µs | errors |', '|---|---|---|---|---|')
for (const mode of ['single', 'workers']) {
  const r = find('node-msquic', 'echo-server', { mode })
  lines.push(`| ${mode === 'workers' ? 'main thread accepts, 2 worker threads serve' : 'one thread'} | ${cell(r, 'streamsPerSecond')} | ${cell(r, 'p50Us')} | ${cell(r, 'p99Us')} | ${r?.metrics?.errors ?? ''} |`)
}
lines.push('', 'On 2 cores the client process competes with the server threads for the same CPUs.')
lines.push('', '## Protocol negotiation under overload (node-msquic: ProtocolRouter + dialProtocol)', '',
  'Every stream is dialled at once; the clients do not limit themselves, so the server\'s limits are what is measured. The handler answers after 50 ms; timeout 10 s. "limits on" is the router\'s defaults (8 negotiations per connection, 64 overall); each connection\'s first credit is its share of the limits (100 streams with limits off), the router grants the rest.', '',
  '| streams / connections | server limits | completed | busy | timeouts | negotiated p50 ms | p99 ms | max ms | server peak negotiations | streams/s |', '|---|---|---|---|---|---|---|---|---|---|')
for (const [connections, streams] of size.negotiation) {
  for (const name of Object.keys(LIMITS)) {
    const r = find('node-msquic', 'negotiation', { connections, limits: name })
    const m = r?.metrics
    lines.push(`| ${streams.toLocaleString('en-US')} / ${connections} | ${name === 'off' ? 'off' : 'on (8 / 64)'} | ${r?.error ?? m?.completed ?? ''} | ${m?.busy ?? ''} | ${m?.timeouts ?? ''} | ${m?.p50Ms.toFixed(1) ?? ''} | ${m?.p99Ms.toFixed(1) ?? ''} | ${m?.maxMs.toFixed(1) ?? ''} | ${m?.serverPeak ?? ''} | ${m === undefined ? '' : Math.round(m.streamsPerSecond).toLocaleString('en-US')} |`)
  }
}
if (!smoke) {
  lines.push('', 'Sizing the defaults: 1,000 streams over 10 connections, handler answers at once, one limit varied at a time.', '',
    '| per connection | overall | streams/s | negotiated p50 ms | p99 ms | server peak |', '|---|---|---|---|---|---|')
  for (const { perConnection, overall } of SWEEP) {
    const m = find('node-msquic', 'negotiation', { limits: 'sweep', perConnection, overall })?.metrics
    lines.push(`| ${limitText(perConnection)} | ${limitText(overall)} | ${m === undefined ? 'error' : Math.round(m.streamsPerSecond).toLocaleString('en-US')} | ${m?.p50Ms.toFixed(1) ?? ''} | ${m?.p99Ms.toFixed(1) ?? ''} | ${m?.serverPeak ?? ''} |`)
  }
}
lines.push('', '## Event delivery (bulk download)', '', '| | native | node-msquic | chainsafe | node:tls |', '|---|---|---|---|---|')
{
  const [n, m, c, t] = IMPLS.map(impl => find(impl, 'bulk', { direction: 'down' }))
  lines.push(`| events per wake-up | ${cell(n, 'eventsPerWakeup', 1)} | ${cell(m, 'eventsPerWakeup', 1)} | | |`)
  lines.push(`| main-thread CPU ms per MiB received | ${cell(n, 'mainThreadCpuMsPerMiB', 2)} | ${cell(m, 'mainThreadCpuMsPerMiB', 2)} | ${cell(c, 'mainThreadCpuMsPerMiB', 2)} | ${cell(t, 'mainThreadCpuMsPerMiB', 2)} |`)
}

// Targets (issue: performance).
const share = (impl, workload, match, key) => metric(find(impl, workload, match), key)
const targets = [
  ['bulk ≥ 90% of native (both directions)', ['up', 'down'].every(d => share('node-msquic', 'bulk', { direction: d }, 'mibPerSecond') >= 0.9 * share('native', 'bulk', { direction: d }, 'mibPerSecond'))],
  ['bulk ≥ 4× chainsafe (both directions)', ['up', 'down'].every(d => share('node-msquic', 'bulk', { direction: d }, 'mibPerSecond') >= 4 * (share('chainsafe', 'bulk', { direction: d }, 'mibPerSecond') ?? Infinity))],
  ['echo c=100 ≥ 50% of native, no hang or error', (() => { const r = find('node-msquic', 'echo', { concurrency: 100 }); return r?.metrics !== undefined && !r.metrics.hung && r.metrics.errors === 0 && r.metrics.completed === r.params.streams && r.metrics.streamsPerSecond >= 0.5 * share('native', 'echo', { concurrency: 100 }, 'streamsPerSecond') })()],
  ['request path ≥ 60% of native at c=100', share('node-msquic', 'request', { concurrency: 100 }, 'streamsPerSecond') >= 0.6 * share('native', 'echo', { concurrency: 100 }, 'streamsPerSecond')],
  ['request path ≥ 70% of native at c=1 and c=10', [1, 10].every(c => share('node-msquic', 'request', { concurrency: c }, 'streamsPerSecond') >= 0.7 * share('native', 'echo', { concurrency: c }, 'streamsPerSecond'))],
  ['Duplex the common way, default settings, ≥ 35% of native at c=100', share('node-msquic', 'echoDefault', { concurrency: 100 }, 'streamsPerSecond') >= 0.35 * share('native', 'echo', { concurrency: 100 }, 'streamsPerSecond')],
  ['handshakes ≥ 60% of native (each concurrency)', size.handshakes.every(([c]) => share('node-msquic', 'handshakes', { concurrency: c }, 'connectionsPerSecond') >= 0.6 * share('native', 'handshakes', { concurrency: c }, 'connectionsPerSecond'))],
  ['resumed handshakes ≥ 1.5× full ones (each concurrency)', size.handshakes.every(([c]) => share('node-msquic', 'resumed', { concurrency: c }, 'connectionsPerSecond') >= 1.5 * share('node-msquic', 'resumed', { concurrency: c }, 'fullConnectionsPerSecond'))]
]
lines.push('', '## Targets', '', ...targets.map(([what, met]) => `- ${met ? 'met' : '**not met**'}: ${what}`), '')
if (only === undefined) {
  // The other benchmarks' sections (bench/libp2p.mjs, flood.mjs, memory.mjs) stay as they were.
  const kept = markedSections()
  writeFileSync(join(root, 'BENCHMARKS.md'), [...lines, ...kept.flatMap(section => [section, ''])].join('\n'))
  writeFileSync(lastRun, JSON.stringify(results.map(({ impl, workload, params, metrics, error }) => ({ impl, workload, params, metrics, error })), null, 1) + '\n')
}
console.log('\n' + lines.join('\n'))
