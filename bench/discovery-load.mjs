#!/usr/bin/env node
// `node bench/discovery-load.mjs [--smoke] [--nodes N] [--transports a,b] [--layouts one,processes]`:
// node-msquic/discovery under the load users put on it: concurrent resolvers, right after the
// providers advertise and at rest. A loopback network of N registries (default 30, plus the
// bootstrap node) per transport (node-msquic, @chainsafe/libp2p-quic, TCP + noise + yamux), run in
// two layouts: all in one process (one JavaScript thread: a stand-in for a loaded host) and each in a
// process of its own (bench/discovery-network.mjs). Every registry advertises one name of its own.
// For each concurrency c (1, 20, 100):
//   after advertise: every registry advertises a new name; as soon as every advertise() has resolved
//     (discoverable), resolves of those names start, c in flight, from random registries, every
//     record checked (the publications go on meanwhile);
//   at rest: once every publication is done and 2 s later, the same again on those names.
// Each cell interleaves three kinds (fanOut 1; the default, fanOut 3 hedged; fanOut 3 all at once),
// so that they see the same network. Reported per kind: p50, p99, max, timeouts (ERR_DISCOVERY_TIMEOUT
// after the default 5 s) and other errors; per cell: where successful resolves spent their time (the
// p50 of each phase of the resolve span, see ResolveTimes) and the longest event-loop delay (any node).
// Targets (issue 21) are printed with the figures, never asserted. Writes BENCHMARKS.md's load section
// (between the discovery-load markers) unless --smoke. `--smoke`: 6 nodes, tiny counts, fails on any
// timeout or error of ours (CI). Run after `npm run build:ts`.
import { existsSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { runOnModernNode } from '../scripts/modern-node.mjs'
import { writeMarkedSection } from './sections.mjs'
import { negotiationsRefused, pool, startNode, transportOptions } from './discovery-network.mjs'
import { PHASES, startProbe, takeProbe } from './discovery-probe.mjs'
import { percentile, runChild } from './lib.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
if (Number(process.versions.node.split('.')[0]) < 22) process.exit(runOnModernNode([fileURLToPath(import.meta.url), ...process.argv.slice(2)], { cwd: root }))
const entry = join(root, 'dist', 'discovery', 'index.js')
if (!existsSync(entry)) {
  console.error('bench/discovery-load.mjs: build first (npm run build:ts)')
  process.exit(1)
}

const arg = (name, fallback) => { const i = process.argv.indexOf(name); return i === -1 ? fallback : process.argv[i + 1] }
const smoke = process.argv.includes('--smoke')
const TRANSPORTS = arg('--transports', 'node-msquic,chainsafe,tcp').split(',')
const LAYOUTS = arg('--layouts', 'one,processes').split(',')
const NODES = Number(arg('--nodes', smoke ? 5 : 30))
const CONCURRENCY = smoke ? [1, 20] : [1, 20, 100]
/** Resolves per cell, by concurrency (a third of each kind). */
const COUNT = smoke ? { 1: 9, 20: 30 } : { 1: 300, 20: 600, 100: 900 }
const KINDS = { 'fanOut 1': { fanOut: 1 }, default: {}, 'fanOut 3': { fanOut: 3, hedge: 0 } }
const LABELS = { one: 'one process', processes: 'own processes' }
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** The network's registries as handles, all in this process. */
async function localNodes (transport) {
  startProbe()
  const { ServiceRegistry } = await import(pathToFileURL(entry).href)
  const options = await transportOptions(transport)
  const create = async bootstrap => await ServiceRegistry.create({ ...options, bootstrap, bootstrapTimeout: 30_000 })
  const first = await create([])
  const registries = [first]
  for (let i = 0; i < NODES; i += 5) registries.push(...await Promise.all(Array.from({ length: Math.min(5, NODES - i) }, async () => await create([first.multiaddrs[0].toString()]))))
  return {
    nodes: registries.map(registry => {
      const ads = new Map()
      return {
        peerId: registry.peerId.toString(),
        advertise: async name => { ads.set(name, await registry.advertise(name)) },
        published: async name => { await ads.get(name)?.published },
        resolve: async (name, options, expect) => {
          const started = performance.now()
          const record = await registry.resolve(name, options)
          const ms = performance.now() - started
          if (record.peerId !== expect) throw new Error(`wrong provider for ${name}`)
          return ms
        },
        routingTable: async () => registry.stats().routingTable,
        busy: async () => negotiationsRefused(registry),
        stop: async () => { await registry.stop() }
      }
    }),
    probe: async () => takeProbe()
  }
}

/** The network's registries as handles, each in a process of its own (driven over IPC). */
async function processNodes (transport) {
  const first = await startNode(transport, entry, undefined, { probe: true })
  const handles = [first]
  for (let i = 0; i < NODES; i += 5) handles.push(...await Promise.all(Array.from({ length: Math.min(5, NODES - i) }, async () => await startNode(transport, entry, first.multiaddr, { probe: true }))))
  return {
    nodes: handles.map(h => ({
      peerId: h.peerId,
      advertise: async name => { await h.call('advertise', { name }) },
      published: async name => { await h.call('published', { name }) },
      resolve: async (name, options, expect) => (await h.call('resolve', { name, options, expect })).ms,
      routingTable: async () => (await h.call('stats')).routingTable,
      busy: async () => (await h.call('stats')).busy,
      stop: async () => {
        const exited = new Promise(resolve => { if (h.child.exitCode !== null) resolve(); else h.child.once('exit', resolve) })
        await h.call('stop').catch(() => {})
        await exited
      }
    })),
    probe: async () => {
      const all = await Promise.all(handles.map(async h => await h.call('probe')))
      return { spans: all.flatMap(p => p.spans), maxLag: Math.max(...all.map(p => p.maxLag)) }
    }
  }
}

/** p50, p99 and max (ms) of `values`. */
const stats = values => ({ p50: percentile(values, 0.5), p99: percentile(values, 0.99), max: values.length === 0 ? 0 : Math.max(...values), n: values.length })

/** One cell: `COUNT[c]` resolves of `names`, `c` in flight, the kinds interleaved. */
async function cell (network, names, moment, c) {
  const { nodes } = network
  await network.probe()
  const busy = async () => (await Promise.all(nodes.map(async n => await n.busy()))).reduce((a, b) => a + b, 0)
  const busyBefore = await busy()
  const kinds = Object.keys(KINDS)
  const out = Object.fromEntries(kinds.map(kind => [kind, { ms: [], timeouts: 0, errors: [] }]))
  const started = performance.now()
  await pool(COUNT[c], c, async i => {
    const kind = kinds[i % kinds.length]
    const target = Math.floor(Math.random() * nodes.length)
    const from = (target + 1 + Math.floor(Math.random() * (nodes.length - 1))) % nodes.length
    try {
      out[kind].ms.push(await nodes[from].resolve(names[target], KINDS[kind], nodes[target].peerId))
    } catch (error) {
      if (error.code === 'ERR_DISCOVERY_TIMEOUT') out[kind].timeouts++
      else out[kind].errors.push(error.message)
    }
  })
  const seconds = (performance.now() - started) / 1000
  const refused = await busy() - busyBefore
  const { spans, maxLag } = await network.probe()
  const ok = spans.filter(s => s.outcome === 'success')
  const phases = Object.fromEntries(PHASES.map(phase => [phase, percentile(ok.map(s => s[phase]).filter(v => v !== undefined), 0.5)]))
  const lookups = {}
  for (const s of spans) lookups[s.lookup] = (lookups[s.lookup] ?? 0) + 1
  return {
    moment,
    c,
    seconds,
    maxLag,
    refused,
    phases,
    lookups,
    kinds: Object.fromEntries(kinds.map(kind => [kind, { ...stats(out[kind].ms), timeouts: out[kind].timeouts, errors: out[kind].errors.length, firstErrors: out[kind].errors.slice(0, 3) }]))
  }
}

/** One transport in one layout, in this (child) process. */
async function measure (transport, layout) {
  const started = performance.now()
  const network = layout === 'one' ? await localNodes(transport) : await processNodes(transport)
  const { nodes } = network
  try {
    const joinSeconds = (performance.now() - started) / 1000
    // The network at rest before the first round: every routing table as full as it gets.
    const full = Math.min(nodes.length - 1, 20)
    for (let waited = 0; waited < 30_000; waited += 250) {
      const sizes = await Promise.all(nodes.map(async n => await n.routingTable()))
      if (sizes.every(size => size >= full)) break
      await sleep(250)
    }
    await sleep(1000)
    const cells = []
    for (const c of CONCURRENCY) {
      const names = nodes.map((_, i) => `load-c${c}-${i}`)
      // An advertise() that fails (its announce and then its full publication timed out) is counted, not fatal.
      const advertised = await Promise.allSettled(nodes.map(async (n, i) => { await n.advertise(names[i]) }))
      const failedAdvertise = advertised.filter(r => r.status === 'rejected').length
      cells.push({ ...await cell(network, names, 'after advertise', c), failedAdvertise })
      await Promise.allSettled(nodes.map(async (n, i) => { await n.published(names[i]) }))
      await sleep(2000)
      cells.push({ ...await cell(network, names, 'at rest', c), failedAdvertise })
    }
    return { transport, layout, nodes: nodes.length, joinSeconds, cells }
  } finally {
    await Promise.all(nodes.map(async n => { await n.stop() }))
  }
}

if (process.argv[2] === '--measure') {
  console.log(JSON.stringify(await measure(process.argv[3], process.argv[4])))
  process.exit(0)
}

// --- the parent: one child per transport and layout, then the tables -------------------------
const loadAverage = loadavg().map(n => n.toFixed(1)).join(', ')
const results = []
for (const layout of LAYOUTS) {
  for (const transport of TRANSPORTS) {
    process.stdout.write(`${transport}, ${NODES + 1} registries in ${LABELS[layout]}… `)
    const run = await runChild(process.execPath, [fileURLToPath(import.meta.url), '--measure', transport, layout, ...process.argv.slice(2)], { cwd: root, limitMs: smoke ? 300_000 : 1_800_000 })
    results.push({ transport, layout, ...run })
    if (run.error !== undefined) { console.log(`error: ${run.error}`); continue }
    const worst = run.cells.reduce((n, cell) => n + Object.values(cell.kinds).reduce((m, k) => m + k.timeouts + k.errors, 0), 0)
    console.log(`${run.cells.length} cells, ${worst} timeouts and errors`)
  }
}

const ms = v => v === undefined || Number.isNaN(v) ? '—' : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`
const find = (transport, layout) => results.find(r => r.transport === transport && r.layout === layout && r.error === undefined)
const kindCell = (k, cell) => `${ms(k.p50)} / ${ms(k.p99)} / ${ms(k.max)}${k.timeouts + k.errors > 0 ? ` (**${k.timeouts} t.o.${k.errors > 0 ? `, ${k.errors} err.` : ''}**)` : ''}${cell?.failedAdvertise > 0 && k === cell.kinds.default ? ` (**${cell.failedAdvertise} advertise() failed**)` : ''}`
const ours = 'node-msquic'
const lines = []
lines.push('<!-- discovery-load:begin -->', '## Service discovery under load (`node bench/discovery-load.mjs`)', '')
lines.push(`Node ${process.versions.node}; a loopback network of ${NODES + 1} registries per transport on 2 shared cores, each advertising one name of its own; ${Object.entries(COUNT).map(([c, n]) => `${n} resolves at c=${c}`).join(', ')}, the three kinds interleaved, every record checked; "after advertise": every registry advertises a new name and the resolves start as soon as every advertise() has resolved (the full publications go on meanwhile); "at rest": the same names once every publication is done and 2 s later. Figures: p50 / p99 / max, timeouts (5 s) in bold. The machine's load average when the run started: ${loadAverage}. ${new Date().toISOString().slice(0, 10)}${smoke ? ' (smoke sizes)' : ''}.`, '')
for (const layout of LAYOUTS) {
  const run = find(ours, layout)
  if (run === undefined) continue
  lines.push(`### node-msquic, ${LABELS[layout]}`, '')
  lines.push('| moment | c | fanOut 1 | default (fanOut 3 hedged) | fanOut 3 all at once | default p50 / fanOut 1 p50 | longest event-loop delay | streams refused busy | where a resolve went, p50: search / negotiate / exchange / verify | provider found in: own store / nearest peers / iterative |')
  lines.push('|---|---|---|---|---|---|---|---|---|---|')
  for (const cell of run.cells) {
    const k = cell.kinds
    const p = cell.phases
    const l = cell.lookups
    lines.push(`| ${cell.moment} | ${cell.c} | ${kindCell(k['fanOut 1'])} | ${kindCell(k.default, cell)} | ${kindCell(k['fanOut 3'])} | ${(k.default.p50 / k['fanOut 1'].p50).toFixed(2)}× | ${ms(cell.maxLag)} | ${cell.refused} | ${[p.search, p.negotiate, p.exchange, p.verify].map(ms).join(' / ')} | ${l.local ?? 0} / ${l.nearby ?? 0} / ${l.iterative ?? 0}${l.none > 0 ? ` (${l.none} none)` : ''} |`)
  }
  lines.push('')
}
const others = TRANSPORTS.filter(t => t !== ours)
if (others.length > 0) {
  lines.push('### The default resolve over the three transports, same run (ratios: the other transport\'s p50 and p99 over ours)', '')
  lines.push(`| layout | moment | c | ${TRANSPORTS.join(' | ')} | ${others.map(t => `${t} / ours`).join(' | ')} |`)
  lines.push(`|---|---|---|${TRANSPORTS.map(() => '---').join('|')}|${others.map(() => '---').join('|')}|`)
  for (const layout of LAYOUTS) {
    const base = find(ours, layout)
    if (base === undefined) continue
    base.cells.forEach((cell, i) => {
      const row = TRANSPORTS.map(t => { const r = find(t, layout); return r === undefined ? 'error' : kindCell(r.cells[i].kinds.default, r.cells[i]) })
      const ratios = others.map(t => { const r = find(t, layout); if (r === undefined) return '—'; const o = r.cells[i].kinds.default; return `${(o.p50 / cell.kinds.default.p50).toFixed(2)}× / ${(o.p99 / cell.kinds.default.p99).toFixed(2)}×` })
      lines.push(`| ${LABELS[layout]} | ${cell.moment} | ${cell.c} | ${row.join(' | ')} | ${ratios.join(' | ')} |`)
    })
  }
  lines.push('')
}
// The targets of issue 21, as this run measured them (figures, not assertions).
const one = find(ours, 'one')
const own = find(ours, 'processes')
const cellOf = (run, moment, c) => run?.cells.find(cell => cell.moment === moment && cell.c === c)
const targets = []
if (one !== undefined) {
  const timeouts = one.cells.reduce((n, cell) => n + Object.values(cell.kinds).reduce((m, k) => m + k.timeouts, 0), 0)
  targets.push(['one process: 0 timeouts everywhere', `${timeouts} timeouts`, timeouts === 0])
  const rest20 = cellOf(one, 'at rest', 20)
  const after20 = cellOf(one, 'after advertise', 20)
  if (rest20 !== undefined) targets.push(['one process, c=20 at rest: p99 < 250 ms (every kind)', Object.entries(rest20.kinds).map(([k, v]) => `${k} ${ms(v.p99)}`).join(', '), Object.values(rest20.kinds).every(v => v.p99 < 250)])
  if (after20 !== undefined) targets.push(['one process, c=20 right after advertise: p99 < 1 s (every kind)', Object.entries(after20.kinds).map(([k, v]) => `${k} ${ms(v.p99)}`).join(', '), Object.values(after20.kinds).every(v => v.p99 < 1000)])
  const c1 = one.cells.filter(cell => cell.c === 1)
  targets.push(['one process, c=1: p99 < 50 ms (every kind, both moments)', c1.map(cell => `${cell.moment}: ${Object.values(cell.kinds).map(v => ms(v.p99)).join(', ')}`).join('; '), c1.every(cell => Object.values(cell.kinds).every(v => v.p99 < 50))])
  targets.push(['one process: the default\'s p50 within 1.2× of fanOut 1 at every c', one.cells.map(cell => `${cell.moment} c=${cell.c} ${(cell.kinds.default.p50 / cell.kinds['fanOut 1'].p50).toFixed(2)}×`).join(', '), one.cells.every(cell => cell.kinds.default.p50 <= 1.2 * cell.kinds['fanOut 1'].p50)])
}
const ownRest20 = cellOf(own, 'at rest', 20)
if (ownRest20 !== undefined) targets.push(['own processes, c=20 at rest: p99 < 100 ms (every kind)', Object.entries(ownRest20.kinds).map(([k, v]) => `${k} ${ms(v.p99)}`).join(', '), Object.values(ownRest20.kinds).every(v => v.p99 < 100)])
lines.push('Targets (issue 21), as measured in this run:', '')
for (const [name, figure, met] of targets) lines.push(`- ${met ? 'met' : '**not met**'}: ${name}: ${figure}`)
lines.push('<!-- discovery-load:end -->')
const section = lines.join('\n')
console.log('\n' + section)

// Correctness (CI): ours never times out or errs in the smoke run; the others' failures are reported.
const failures = []
for (const layout of LAYOUTS) {
  const run = results.find(r => r.transport === ours && r.layout === layout)
  if (run?.error !== undefined) { failures.push(`${layout}: ${run.error}`); continue }
  for (const cell of run?.cells ?? []) {
    if (cell.failedAdvertise > 0 && cell.moment === 'after advertise') failures.push(`${layout}, c=${cell.c}: ${cell.failedAdvertise} advertise() failed`)
    for (const [kind, k] of Object.entries(cell.kinds)) {
      if (k.timeouts + k.errors > 0) failures.push(`${layout}, ${cell.moment}, c=${cell.c}, ${kind}: ${k.timeouts} timeouts, ${k.errors} errors ${k.firstErrors.join('; ')}`)
      if (k.n + k.timeouts + k.errors !== COUNT[cell.c] / 3) failures.push(`${layout}, ${cell.moment}, c=${cell.c}, ${kind}: not every resolve was counted`)
    }
  }
}
for (const f of failures) console.error(`${smoke ? 'FAILED' : 'note'}: node-msquic: ${f}`)
if (smoke && failures.length > 0) process.exitCode = 1
if (!smoke && LAYOUTS.length === 2 && TRANSPORTS.includes(ours)) {
  writeMarkedSection(section)
}
