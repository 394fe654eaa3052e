#!/usr/bin/env node
// `node bench/discovery-reconnect.mjs [--smoke]`: a resolve right after the connection to its
// provider closed (as after an idle timeout), so that it costs a new connection: to a provider this
// registry called before (session resumption, the default, with 0-RTT) against one it never called
// (sessionTickets: false: every reconnect a full handshake, certificate signed and verified). Two
// networks of three registries (bootstrap, provider, client) in one process, the two kinds
// interleaved, every record checked; p50 / p99 / max and the ratio, all from this run. Prints a
// markdown section and writes it into BENCHMARKS.md between the discovery-reconnect markers.
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runOnModernNode } from '../scripts/modern-node.mjs'
import { writeMarkedSection } from './sections.mjs'
import { percentile } from './lib.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
if (Number(process.versions.node.split('.')[0]) < 22) process.exit(runOnModernNode([fileURLToPath(import.meta.url), ...process.argv.slice(2)], { cwd: root }))
const smoke = process.argv.includes('--smoke')
const rounds = smoke ? 5 : 200
const { ServiceRegistry } = await import('../dist/discovery/index.js')
const { quicConnectionOf } = await import('../dist/libp2p/index.js')

async function network (transport) {
  const bootstrap = await ServiceRegistry.create({ firstNode: true, transport })
  const join = () => ServiceRegistry.create({ bootstrap: bootstrap.multiaddrs[0].toString(), transport })
  const provider = await join()
  const client = await join()
  await provider.advertise('reconnect', { wait: 'published' })
  await client.resolve('reconnect', { timeout: 10_000 })
  return { registries: [bootstrap, provider, client], provider, client }
}

const kinds = { 'called before (resumed)': await network(undefined), 'never called (full handshake)': await network({ sessionTickets: false }) }
const times = Object.fromEntries(Object.keys(kinds).map(kind => [kind, []]))
const resumed = Object.fromEntries(Object.keys(kinds).map(kind => [kind, 0]))
let failures = 0
const loadAtStart = loadavg().map(l => l.toFixed(1)).join(', ')
for (let i = 0; i < rounds; i++) {
  for (const [kind, { provider, client }] of Object.entries(kinds)) {
    await client.libp2p.hangUp(provider.peerId)
    const t = performance.now()
    try {
      const record = await client.resolve('reconnect', { timeout: 10_000 })
      if (record.peerId !== provider.peerId.toString()) throw new Error('another provider answered')
      times[kind].push(performance.now() - t)
      if (client.libp2p.getConnections(provider.peerId).some(c => quicConnectionOf(c)?.sessionResumed === true)) resumed[kind]++
    } catch (error) {
      failures++
      console.error(`${kind}: ${error.message}`)
    }
  }
}
for (const { registries } of Object.values(kinds)) await Promise.all(registries.map(r => r.stop()))

const ms = v => `${v.toFixed(2)} ms`
const [ours, full] = Object.values(times).map(t => percentile(t, 0.5))
const section = [
  '<!-- discovery-reconnect:begin -->',
  '## Discovery reconnects (`node bench/discovery-reconnect.mjs`)',
  '',
  `A resolve right after the connection to the provider was closed (${rounds} of each kind, interleaved; one process, loopback; load average at the start ${loadAtStart}; Node ${process.versions.node}; ${new Date().toISOString().slice(0, 10)}${smoke ? '; smoke sizes' : ''}). The registry reconnects (its own dial, or the routing table's redial of a peer whose last connection closed) before the record fetch.`,
  '',
  '| provider | p50 | p99 | max | connections resumed |',
  '|---|---|---|---|---|',
  ...Object.entries(times).map(([kind, t]) => `| ${kind} | ${ms(percentile(t, 0.5))} | ${ms(percentile(t, 0.99))} | ${ms(Math.max(...t))} | ${resumed[kind]} of ${t.length} |`),
  '',
  `A provider called before answers in ${(ours / full).toFixed(2)}× the time of one never called (p50); ${failures} failures.`,
  '<!-- discovery-reconnect:end -->'
].join('\n')
console.log(section)
if (failures > 0) process.exitCode = 1
if (!smoke) {
  writeMarkedSection(section)
}
process.exit()
