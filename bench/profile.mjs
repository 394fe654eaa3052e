#!/usr/bin/env node
// `npm run bench:profile`: where the JS thread's time goes in the two echo paths at concurrency
// 100 (the request path, and the Duplex written the common way with default settings), and in
// connection setup (handshakes at concurrency 32, full and resumed), from V8's CPU profiler, with
// native events and native calls per stream and per handshake. Writes bench/PROFILE.md. Run it on
// a supported Node (>= 22).
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const params = { streams: 50000, concurrency: 100, size: 64, timeoutMs: 120000 }
const PATHS = [
  ['request', 'the request path: connection.request() against listener.serveRequests()'],
  ['echoDefault', 'the Duplex the common way: pipeline(stream, stream) on the server, for await on the client, default settings'],
  ['echo', 'the Duplex read to its end and written back (the echo benchmark)']
]
// The code before the stream core (f4eef3f), same workloads: 8.1 native events per stream (measured,
// the previous PROFILE.md), and 10 native calls (counted in its code: per side the stream's
// unidirectional(), a send for the data and another for the FIN, consumed(); plus the client's
// openStream() and the server's taken()).
const BEFORE = { echo: { events: 8.1, calls: 10 }, echoDefault: { events: 8.1, calls: 10 } }

// Connection setup before the blocking calls left the JS thread (3bcc2c1): measured with the same
// workload on the build before it.
const SETUP_BEFORE = { events: 8, calls: 4, wakeups: 6.75 }
const SETUP = [
  ['full', { connections: 2000, concurrency: 32, timeoutMs: 120000 }, 'full handshakes, 32 at a time'],
  ['resumed', { connections: 2000, concurrency: 32, resume: true, timeoutMs: 120000 }, 'resumed handshakes (a session ticket), 32 at a time']
]

function profile (workload, args = params) {
  const dir = mkdtempSync(join(tmpdir(), 'node-msquic-profile-'))
  const run = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, join(root, 'bench', 'child.mjs'), 'node-msquic', workload, JSON.stringify(args)], { encoding: 'utf8' })
  if (run.status !== 0) throw new Error(run.stderr)
  const result = JSON.parse(run.stdout.trim().split('\n').pop())
  const data = JSON.parse(readFileSync(join(dir, readdirSync(dir).find(f => f.endsWith('.cpuprofile'))), 'utf8'))
  rmSync(dir, { recursive: true, force: true })
  const nodes = new Map(data.nodes.map(n => [n.id, n]))
  const name = n => {
    const { functionName, url, lineNumber } = n.callFrame
    const file = url === '' ? '' : ` (${url.replace(/^.*\/(node_modules|dist|bench|lib)\//, '$1/').replace(/^node:/, '')}:${lineNumber + 1})`
    return `${functionName || '(anonymous)'}${file}`
  }
  const self = new Map()
  let total = 0
  data.samples.forEach((id, i) => {
    const dt = data.timeDeltas[i]
    total += dt
    const key = name(nodes.get(id))
    self.set(key, (self.get(key) ?? 0) + dt)
  })
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => `| ${(v / total * 100).toFixed(1)}% | \`${k}\` |`)
  return { metrics: result.metrics, top }
}

const lines = [
  '# Where the time goes: 64-byte echo at concurrency 100, and connection setup',
  '',
  '_Written by `npm run bench:profile` (bench/profile.mjs) from V8\'s CPU profile of one run per path._',
  '',
  `Each run: ${params.streams.toLocaleString('en-US')} echoes of 64 bytes, ${params.concurrency} at a time, one connection, client and server in one Node ${process.versions.node} process.`,
  'Native events and native calls are counted for both sides together (`getDeliveryStats()`).',
  '',
  '| path | streams/s | native events per stream | native calls per stream | events per JS wake-up | before the stream core (events / calls) |',
  '|---|---|---|---|---|---|'
]
const sections = []
for (const [workload, what] of PATHS) {
  const { metrics: m, top } = profile(workload)
  const before = BEFORE[workload]
  lines.push(`| ${workload} | ${Math.round(m.streamsPerSecond).toLocaleString('en-US')} | ${m.eventsPerStream.toFixed(1)} | ${m.nativeCallsPerStream.toFixed(1)} | ${Math.round(m.eventsPerWakeup)} | ${before === undefined ? 'new' : `${before.events} / ${before.calls}`} |`)
  sections.push('', `## ${workload}: ${what}`, '', '| self time | function |', '|---|---|', ...top)
}
lines.push('', '### Connection setup: what a handshake costs the JS thread (connect, then close; both ends in one process)', '',
  '| handshakes | connections/s | native events | native calls | JS wake-ups | process CPU µs | before 3bcc2c1 (events / calls / wake-ups) |',
  '|---|---|---|---|---|---|---|')
for (const [name, args, what] of SETUP) {
  const { metrics: m, top } = profile('handshakeCosts', args)
  lines.push(`| ${what} | ${Math.round(m.connectionsPerSecond).toLocaleString('en-US')} | ${m.eventsPerHandshake.toFixed(1)} | ${m.nativeCallsPerHandshake.toFixed(1)} | ${m.wakeupsPerHandshake.toFixed(2)} | ${Math.round(m.cpuUsPerHandshake).toLocaleString('en-US')} | ${name === 'full' ? `${SETUP_BEFORE.events} / ${SETUP_BEFORE.calls} / ${SETUP_BEFORE.wakeups}` : '—'} |`)
  sections.push('', `## handshakes, ${name}: ${what}`, '', '| self time | function |', '|---|---|', ...top)
}
lines.push(...sections, '', '## Reading', '',
  '- `(program)` is native time: the addon\'s calls into MsQuic (each stream open, start and send queues an',
  '  operation for a MsQuic worker and may wake it), V8 runtime calls and event-loop wake-ups.',
  '- The request path spends no time in node:stream: per echo the client makes one native call that opens the',
  '  stream and sends the body with its FIN (`QUIC_SEND_FLAG_START | QUIC_SEND_FLAG_FIN`), the server one that',
  '  answers with the FIN, and five events reach JS in all (the server\'s new stream and its whole message, the',
  '  client\'s whole reply, and the two final events), where the Duplex path needs a Duplex, an iterator and',
  '  end-of-stream bookkeeping per side.',
  '- `(idle)` is the JS thread waiting for MsQuic\'s workers. Client and server share one process on 2 cores: on',
  '  the request path the JS thread idles part of the run, so the workers\' share of the CPU (both ends\' QUIC work)',
  '  is what bounds it there, with the native sends (`send`, the server\'s answer; the client\'s open-and-send) next.',
  '- The Duplex paths are bounded by node:stream itself (`pipeline`, `eos`, async iterators, nextTick) and by',
  '  the garbage those make, not by event delivery: hundreds of events arrive per wake-up.',
  '- A handshake\'s events: per side the connection\'s CONNECTED and its final event, the server\'s new',
  '  connection and the client\'s session ticket, and the shutdown notices; its native calls: the client\'s',
  '  connect() and close(), the server\'s close(). Before 3bcc2c1 the JS thread called MsQuic\'s SetParam',
  '  (the remote address) itself before each start, and MsQuic runs that as an operation on the connection\'s',
  '  worker and waits for it: with 32 handshakes at once 89% of the JS thread\'s busy time was that wait. The',
  '  start now runs on the runtime\'s blocking-calls thread (native/core/blocking_calls.h).',
  '- What a handshake costs beyond that is MsQuic\'s and the TLS library\'s own work on the workers (key',
  '  exchange, signatures, certificate checks), which the native harness pays alike: `(program)` above.',
  '')
writeFileSync(join(root, 'bench', 'PROFILE.md'), lines.join('\n'))
console.log(lines.join('\n'))
