#!/usr/bin/env node
// `npm run bench:profile`: where the JS thread's time goes in the echo workload (concurrency 100),
// from V8's CPU profiler. Writes bench/PROFILE.md. Run it on a supported Node (>= 22).
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dir = mkdtempSync(join(tmpdir(), 'node-msquic-profile-'))
const params = { streams: 50000, concurrency: 100, size: 64, timeoutMs: 120000 }
const run = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, join(root, 'bench', 'child.mjs'), 'node-msquic', 'echo', JSON.stringify(params)], { encoding: 'utf8' })
if (run.status !== 0) throw new Error(run.stderr)
const result = JSON.parse(run.stdout.trim().split('\n').pop())
const profile = JSON.parse(readFileSync(join(dir, readdirSync(dir).find(f => f.endsWith('.cpuprofile'))), 'utf8'))
rmSync(dir, { recursive: true, force: true })

const nodes = new Map(profile.nodes.map(n => [n.id, n]))
const parent = new Map()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const name = n => {
  const { functionName, url, lineNumber } = n.callFrame
  const file = url === '' ? '' : ` (${url.replace(/^.*\/(node_modules|dist|bench|lib)\//, '$1/').replace(/^node:/, '')}:${lineNumber + 1})`
  return `${functionName || '(anonymous)'}${file}`
}
const self = new Map()
const inclusive = new Map()
let total = 0
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i]
  total += dt
  const node = nodes.get(id)
  self.set(name(node), (self.get(name(node)) ?? 0) + dt)
  const seen = new Set()
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const key = name(nodes.get(at))
    if (!seen.has(key)) { seen.add(key); inclusive.set(key, (inclusive.get(key) ?? 0) + dt) }
  }
})
const table = (map, n) => [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
  .map(([k, v]) => `| ${(v / total * 100).toFixed(1)}% | \`${k}\` |`)
const m = result.metrics
writeFileSync(join(root, 'bench', 'PROFILE.md'), [
  '# Where the time goes: echo at concurrency 100',
  '',
  '_Written by `npm run bench:profile` (bench/profile.mjs) from V8\'s CPU profile of one run._',
  '',
  `Run: ${params.streams.toLocaleString('en-US')} echo streams of 64 bytes, ${params.concurrency} at a time, client and server in one Node ${process.versions.node} process: ` +
  `${Math.round(m.streamsPerSecond).toLocaleString('en-US')} streams/s, ${m.eventsPerStream?.toFixed(1)} native events per stream, ${Math.round(m.eventsPerWakeup)} events per JS wake-up.`,
  '',
  '## Self time (top 15)', '', '| share | function |', '|---|---|', ...table(self, 15),
  '', '## Inclusive time (top 25)', '', '| share | function |', '|---|---|', ...table(inclusive, 25),
  '', '## Reading', '',
  '- `(program)` is native time: the addon\'s calls into MsQuic (each stream open, start and send queues work for a',
  '  MsQuic worker and wakes it), V8 runtime calls and the event-loop wake-ups. `(garbage collector)` is the',
  '  allocation cost of two node:stream Duplex objects, their promises and iterators per echo.',
  '- Event delivery is not the limit: hundreds of events arrive per wake-up. The cost is per stream, in JS: a',
  '  Duplex per stream on each side, `for await` iterators, end-of-stream bookkeeping (`eos`, `finishMaybe`).',
  '- What would move it: a lighter stream object than node:stream for small request/response streams (a',
  '  message API: one call opens, writes and ends a stream, one promise returns the reply), and fewer',
  '  native wake-ups per stream (open, start and first send in one MsQuic call with `QUIC_SEND_FLAG_START`).',
  ''
].join('\n'))
console.log('bench/PROFILE.md written')
