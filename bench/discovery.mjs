#!/usr/bin/env node
// `node bench/discovery.mjs [--smoke] [--nodes N]`: node-msquic/discovery on a loopback network of
// N registries (default 30, plus the bootstrap node), the same network over three transports:
// node-msquic, @chainsafe/libp2p-quic, and TCP + noise + yamux. Each transport's network runs twice:
// every registry in a process of its own, as deployed (bench/discovery-network.mjs), then all of
// them in one process, where one JavaScript thread does every node's work (the "one thread" rows).
//   resolve p50/p99: one provider per name, fanOut 1; and three providers per name, fanOut 3 (all
//     at once, and hedged as by default: one more provider once the 95th percentile of the node's
//     recent answer latencies has passed without an answer)
//   advertise-to-discoverable: from advertise() until another node's resolve() finds it (p50); the
//     advertisement's full publication goes on meanwhile (each sample starts once the previous one's is done)
//   query-layer events/s on the JS thread: queries through the pending map per second (no network)
//   where the resolves' provider searches found their first provider (stats().lookups): this node's
//     own provider store, one round to the nearest peers, or kad-dht's iterative query
//   memory per 10,000 records a DHT node stores (heap + array buffers, after GC)
// Prints a table with ratios and writes it into BENCHMARKS.md between the discovery markers.
// The query layer and the memory are measured in the one-process run.
// `--smoke`: 6 nodes and tiny counts; fails on any error (CI). Run after `npm run build:ts`.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { runOnModernNode } from '../scripts/modern-node.mjs'
import { writeMarkedSection } from './sections.mjs'
import { interleave, latencies, lookupsSince, measureNetwork, pool, sumLookups, transportOptions } from './discovery-network.mjs'
import { runChild } from './lib.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
if (Number(process.versions.node.split('.')[0]) < 22) process.exit(runOnModernNode([fileURLToPath(import.meta.url), ...process.argv.slice(2)], { cwd: root }))
const entry = join(root, 'dist', 'discovery', 'index.js')
if (!existsSync(entry)) {
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
  if (tsc.status !== 0) process.exit(tsc.status ?? 1)
}

const TRANSPORTS = ['node-msquic', 'chainsafe', 'tcp']
const smoke = process.argv.includes('--smoke')
const nodesArg = process.argv.indexOf('--nodes')
const size = smoke
  ? { nodes: 6, resolves: 30, multi: 1, fresh: 3, records: 1000, layerOps: 20_000 }
  : { nodes: nodesArg === -1 ? 30 : Number(process.argv[nodesArg + 1]), resolves: 300, multi: 8, fresh: 20, records: 10_000, layerOps: 500_000 }

/** One transport's figures, in this (child) process. */
async function measure (transport) {
  const { ServiceRegistry, QueryLayer, recordKey, signRecord } = await import(pathToFileURL(entry).href)
  const options = await transportOptions(transport)
  const create = async bootstrap => await ServiceRegistry.create({ ...options, bootstrap, defaultTtl: 10 * 60_000, bootstrapTimeout: 30_000 })
  const started = performance.now()
  const bootstrapNode = await create([])
  const bootstrap = [bootstrapNode.multiaddrs[0].toString()]
  const nodes = []
  for (let i = 0; i < size.nodes; i += 5) nodes.push(...await Promise.all(Array.from({ length: Math.min(5, size.nodes - i) }, async () => await create(bootstrap))))
  const joinSeconds = (performance.now() - started) / 1000
  const all = [bootstrapNode, ...nodes]
  const errors = []
  try {
    // Every node provides one name of its own; `multi` names have three providers each.
    // (Set-up, not measured: each publication is awaited in full, not only until discoverable.)
    await pool(nodes.length, 5, async i => { await nodes[i].advertise(`single-${i}`, { metadata: { i }, wait: 'published' }) })
    await pool(size.multi, 3, async j => {
      for (let k = 0; k < 3; k++) await nodes[(j * 3 + k) % nodes.length].advertise(`multi-${j}`, { metadata: { j, k }, wait: 'published' })
    })
    // A moment for the routing tables to settle after the burst of publications.
    await new Promise(resolve => setTimeout(resolve, 500))

    const rand = n => Math.floor(Math.random() * n)
    const timed = async (fn, into) => {
      const t = performance.now()
      try {
        await fn()
        into.push(performance.now() - t)
      } catch (error) {
        errors.push(error.message)
      }
    }
    const lookupsBefore = sumLookups(all.map(r => r.stats().lookups))
    // Interleaved, so that every kind sees the same network: one provider per name with fanOut 1;
    // three providers per name with fanOut 3 all at once (hedge 0), and with the default hedge
    // ('auto': one more provider once the 95th percentile of recent answer latencies has passed).
    // Each round runs the three in a random order, 5 ms apart: the providers a resolve cancelled
    // wind down in between instead of in the next one's measurement.
    const single = []
    const fanOut = []
    const hedged = []
    const resolveOne = async kind => {
      if (kind === single) {
        const target = rand(nodes.length)
        let from = rand(nodes.length)
        if (from === target) from = (from + 1) % nodes.length
        await timed(async () => {
          const record = await nodes[from].resolve(`single-${target}`, { fanOut: 1 })
          if (record.peerId !== nodes[target].peerId.toString()) throw new Error('wrong provider')
        }, single)
        return
      }
      const j = rand(size.multi)
      // Never from one of the name's own providers (it would answer from its own record).
      const providers = [0, 1, 2].map(k => (j * 3 + k) % nodes.length)
      let from = rand(nodes.length)
      while (providers.includes(from)) from = (from + 1) % nodes.length
      const options = kind === fanOut ? { fanOut: 3, hedge: 0 } : { fanOut: 3 }
      await timed(async () => { await nodes[from].resolve(`multi-${j}`, options) }, kind)
    }
    await interleave(size.resolves, [single, fanOut, hedged], resolveOne)
    const hedgeDelays = nodes.map(r => r.stats().hedgeDelay).sort((a, b) => a - b)
    const lookups = lookupsSince(lookupsBefore, sumLookups(all.map(r => r.stats().lookups)))

    // Advertise-to-discoverable: a new name, advertised, then resolved from another node until found.
    // Each sample starts on a network at rest: the previous advertisement's full publication (which
    // goes on after advertise() resolves) is waited for first, outside the measurement.
    const fresh = []
    let previous
    for (let n = 0; n < size.fresh; n++) {
      await previous?.published.catch(() => {})
      const a = rand(nodes.length)
      const b = (a + 1 + rand(nodes.length - 1)) % nodes.length
      await timed(async () => {
        previous = await nodes[a].advertise(`fresh-${n}`)
        for (;;) {
          try {
            await nodes[b].resolve(`fresh-${n}`, { timeout: 2000 })
            return
          } catch (error) {
            if (error.code !== 'ERR_DISCOVERY_NOT_FOUND') throw error
          }
        }
      }, fresh)
    }

    // The query layer alone: queries through the pending map (timer armed, answer, cleanup) per second.
    const layer = new QueryLayer()
    const answer = Promise.resolve(1)
    const layerStarted = performance.now()
    for (let n = 0; n < size.layerOps; n++) await layer.run('bench', {}, async () => await answer)
    const layerPerSecond = size.layerOps / ((performance.now() - layerStarted) / 1000)
    if (layer.pending.size !== 0 || layer.timers !== 0) errors.push('the query layer kept entries')

    // Memory of stored records: one node stores `records` signed records as a DHT server does.
    const holder = nodes[0]
    const dht = holder.libp2p.services.dht
    const privateKey = holder.libp2p.components.privateKey
    const { Record } = await import('@libp2p/kad-dht')
    const putValue = Object.values(dht.rpc.handlers).find(h => h.constructor.name === 'PutValueHandler')
    const heap = () => { globalThis.gc?.(); globalThis.gc?.(); const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers }
    const store = holder.libp2p.components.datastore
    const stored = () => store.data?.size ?? NaN
    const storedBefore = stored()
    let recordBytes = 0
    const before = heap()
    for (let n = 0; n < size.records; n++) {
      const value = await signRecord({ name: `mem-${n}`, peerId: holder.peerId.toString(), multiaddrs: holder.multiaddrs.map(String), metadata: { n, region: 'eu-west' }, sequence: n + 1, expiresAt: Date.now() + 3_600_000 }, privateKey)
      recordBytes += value.byteLength / size.records
      // kad-dht stores the record before its first query event; the query is cut off there.
      // kad-dht's own PUT_VALUE handler (validation included), as if a peer had sent the record.
      await putValue.handle(bootstrapNode.peerId, { type: 'PUT_VALUE', key: recordKey(`mem-${n}`, holder.peerId), record: new Record(recordKey(`mem-${n}`, holder.peerId), value, new Date()).serialize() })
    }
    const after = heap()
    if (Number.isFinite(storedBefore) && stored() - storedBefore !== size.records) errors.push(`stored ${stored() - storedBefore} records of ${size.records}`)
    const mbPer10k = (after - before) / 2 ** 20 * (10_000 / size.records)

    return {
      transport,
      nodes: all.length,
      joinSeconds,
      ...latencies({ single, fanOut, hedged, fresh }, hedgeDelays),
      layerPerSecond,
      lookups,
      mbPer10k,
      recordBytes,
      errors: errors.slice(0, 5),
      errorCount: errors.length,
      pending: all.reduce((n, r) => n + [...r.queries.pending.values()].filter(q => q.kind !== 'advertise').length, 0)
    }
  } finally {
    await Promise.all(all.map(async r => { await r.stop() }))
  }
}

if (process.argv[2] === '--child') {
  const result = await measure(process.argv[3])
  console.log(JSON.stringify(result))
  process.exit(0)
}
if (process.argv[2] === '--network') {
  const result = await measureNetwork(process.argv[3], size, entry)
  console.log(JSON.stringify(result))
  process.exit(0)
}

const results = []
const summary = r => r.error !== undefined ? `error: ${r.error}` : `resolve p50 ${r.single.p50.toFixed(1)} / p99 ${r.single.p99.toFixed(1)} ms, fan-out 3 hedged p50 ${r.hedged.p50.toFixed(1)} ms, ${r.errorCount} errors`
for (const transport of TRANSPORTS) {
  const result = { transport }
  // The same workload twice: every node in a process of its own, then all of them on one thread.
  for (const [key, mode, label] of [['network', '--network', 'processes'], ['one', '--child', 'one process']]) {
    process.stdout.write(`${transport}: ${size.nodes + 1} nodes in ${label}… `)
    const args = ['--expose-gc', fileURLToPath(import.meta.url), mode, transport, ...process.argv.slice(2)]
    const run = await runChild(process.execPath, args, { cwd: root, limitMs: smoke ? 180_000 : 900_000 })
    result[key] = run
    console.log(summary(run))
  }
  results.push(result)
}

const ms = v => v === undefined ? '—' : `${v.toFixed(1)} ms`
const fmt = n => Math.round(n).toLocaleString('en-US')
const [ours, ...others] = results
// The latency figures of one layout: [label, figure].
const latencyRows = [
  ['resolve p50, one provider, fanOut 1', r => r.single.p50],
  ['resolve p99, one provider, fanOut 1', r => r.single.p99],
  ['resolve p50, three providers, fanOut 3 all at once (hedge 0)', r => r.fanOut.p50],
  ['resolve p99, three providers, fanOut 3 all at once (hedge 0)', r => r.fanOut.p99],
  ['resolve p50, three providers, fanOut 3 hedged (the default)', r => r.hedged.p50],
  ['resolve p99, three providers, fanOut 3 hedged (the default)', r => r.hedged.p99],
  ['the automatic hedge at the end (median over the nodes)', r => r.hedgeDelay],
  ['advertise-to-discoverable p50', r => r.fresh.p50]
]
const lookupsRow = "where the resolves' provider searches found the first provider: own store / nearest peers / iterative query"
// [label, which run, shown, compared (smaller is better; none: no ratio)]
const rows = [
  ...latencyRows.map(([name, pick]) => [name, 'network', r => ms(pick(r)), pick]),
  [lookupsRow, 'network', r => showLookups(r.lookups), undefined],
  ['network start (join of all nodes)', 'network', r => `${r.joinSeconds.toFixed(1)} s`, r => r.joinSeconds],
  ...latencyRows.map(([name, pick]) => [`one thread: ${name}`, 'one', r => ms(pick(r)), pick]),
  [`one thread: ${lookupsRow}`, 'one', r => showLookups(r.lookups), undefined],
  ['query layer, queries per second on the JS thread (no network)', 'one', r => fmt(r.layerPerSecond), r => 1 / r.layerPerSecond],
  ['memory per 10,000 stored records (after GC)', 'one', r => `${r.mbPer10k.toFixed(1)} MB`, r => r.mbPer10k]
]
const showLookups = l => l === undefined ? '—' : `${l.local} / ${l.nearby} / ${l.iterative}${l.none > 0 ? ` (${l.none} none)` : ''}`
const failed = run => run === undefined || run.error !== undefined
const cell = (r, key, show) => failed(r[key]) ? `error: ${r[key]?.error}` : show(r[key])
const ratio = (r, key, pick) => pick === undefined || failed(r[key]) || failed(ours[key]) ? '—' : `${(pick(r[key]) / pick(ours[key])).toFixed(2)}×`
const version = name => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version
const count = ours.network?.nodes ?? ours.one?.nodes ?? size.nodes + 1
const section = [
  '<!-- discovery:begin -->',
  '## Service discovery (`node bench/discovery.mjs`)',
  '',
  `Node ${process.versions.node}; libp2p ${version('libp2p')}; @libp2p/kad-dht ${version('@libp2p/kad-dht')}; @chainsafe/libp2p-quic ${version('@chainsafe/libp2p-quic')}; a loopback network of ${count} registries per transport on 2 shared cores, run twice: each registry in a process of its own (as deployed), then all ${count} in one process (rows "one thread": every node's kad-dht and peer-store work queues on one JavaScript thread); ${size.resolves} resolves of each kind from random nodes, one at a time, timed on the resolving node; ${size.fresh} advertise-to-discoverable samples; records of about ${Math.round(ours.one?.recordBytes ?? 0)} bytes signed; one run${smoke ? ' (smoke sizes)' : ''}; ${new Date().toISOString().slice(0, 10)}. The ratio columns are the other transport's figure over ours (above 1: ours is faster or smaller).`,
  '',
  '| figure | node-msquic | @chainsafe/libp2p-quic | TCP + noise + yamux | chainsafe / ours | TCP / ours |',
  '|---|---|---|---|---|---|',
  ...rows.map(([name, key, show, pick]) => `| ${name} | ${results.map(r => cell(r, key, show)).join(' | ')} | ${others.map(r => ratio(r, key, pick)).join(' | ')} |`),
  '<!-- discovery:end -->'
].join('\n')
console.log('\n' + section)

// Correctness (CI): ours must not fail, in either layout; the others' errors are reported.
const failures = []
for (const key of ['network', 'one']) {
  const run = ours[key]
  if (failed(run)) { failures.push(`${key}: ${run?.error}`); continue }
  if (run.errorCount > 0) failures.push(`${key}: ${run.errorCount} errors: ${run.errors.join('; ')}`)
  if (run.pending > 0) failures.push(`${key}: ${run.pending} lookups left pending`)
  if (run.single.n !== size.resolves || run.fanOut.n !== size.resolves || run.hedged.n !== size.resolves || run.fresh.n !== size.fresh) failures.push(`${key}: not every operation was measured`)
  for (const r of others) if (failed(r[key]) || r[key].errorCount > 0) console.log(`note: ${r.transport} (${key}): ${r[key]?.error ?? r[key].errors.join('; ')}`)
}
for (const f of failures) console.error(`FAILED: node-msquic: ${f}`)
if (failures.length > 0) process.exitCode = 1
if (!smoke && failures.length === 0) {
  writeMarkedSection(section)
}
