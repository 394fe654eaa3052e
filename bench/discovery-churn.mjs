#!/usr/bin/env node
// `node bench/discovery-churn.mjs [--smoke] [--sizes 34,68,102] [--per-process 17]`: node-msquic/discovery
// on larger networks and under churn, each registry host a process (test/discovery/fixtures/
// registry-host.mjs, `--per-process` registries each; killing one kills its registries at once, as a
// machine that dies).
//   For each network size: the network's start, every registry advertising a service of its own,
//   then resolves of random services from random registries (20 in flight): p50/p99/max, timeouts,
//   where the provider searches found the provider (own store / nearest peers / kad-dht's iterative
//   query) and the requests a resolve sent (kad-dht messages, providers and record requests, counted
//   in the registries), against the network's size.
//   On the largest: a third of the registries killed with SIGKILL (whole processes) while as many new
//   ones join and advertise; resolves of the live services during the churn; how long until no live
//   routing table holds a dead peer (the tables heal); and, past the TTL (the shared clock moved
//   forward), resolves of the dead names (all must be not found).
// Writes BENCHMARKS.md's churn section unless --smoke. `--smoke`: 2 small processes, a few resolves,
// fails on any error (CI). Run after `npm run build:ts`.
import { existsSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runOnModernNode } from '../scripts/modern-node.mjs'
import { writeMarkedSection } from './sections.mjs'
import { percentile } from './lib.mjs'
import { startHost as startRemote, stopHosts } from '../test/discovery/fixtures/hosts.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
if (Number(process.versions.node.split('.')[0]) < 22) process.exit(runOnModernNode([fileURLToPath(import.meta.url), ...process.argv.slice(2)], { cwd: root }))
if (!existsSync(join(root, 'dist', 'discovery', 'index.js'))) {
  console.error('bench/discovery-churn.mjs: build first (npm run build:ts)')
  process.exit(1)
}
const arg = (name, fallback) => { const i = process.argv.indexOf(name); return i === -1 ? fallback : process.argv[i + 1] }
const smoke = process.argv.includes('--smoke')
const PER = Number(arg('--per-process', smoke ? 5 : 17))
const SIZES = arg('--sizes', smoke ? '10' : '34,68,102').split(',').map(Number)
const RESOLVES = smoke ? 20 : 400
const TTL = 10 * 60_000
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

const hosts = []
async function startHost () {
  const host = await startRemote()
  hosts.push(host)
  return host
}

/** `count` registries in processes of PER, joined through `bootstrap` (none: a new network). */
async function startRegistries (prefix, count, bootstrap) {
  const nodes = []
  const add = (host, made) => nodes.push(...made.map((m, index) => ({ host, index, ...m, name: `${prefix}-${m.peerId.slice(-10)}` })))
  let boot = bootstrap
  if (boot === undefined) {
    const host = await startHost()
    add(host, await host.call('start', { count: Math.min(PER, count), defaultTtl: TTL }))
    boot = nodes[0].multiaddr
  }
  const left = count - nodes.length
  await Promise.all(Array.from({ length: Math.ceil(left / PER) }, async (_, i) => {
    const host = await startHost()
    add(host, await host.call('start', { count: Math.min(PER, left - i * PER), bootstrap: boot, defaultTtl: TTL }))
  }))
  return { nodes, bootstrap: boot }
}

/** Requests the registries of `list` sent so far. */
const sent = async list => (await Promise.all(list.map(async h => await h.call('messages')))).reduce((a, b) => a + b, 0)

/**
 * Resolves of random `targets` from random `askers`, 20 in flight: latencies, failures by code, and
 * the requests every registry sent meanwhile per resolve (the network otherwise at rest).
 */
async function resolves (askers, targets, count) {
  const ms = []
  const failures = {}
  const senders = [...new Set(askers.map(n => n.host))]
  const before = await sent(senders)
  let next = 0
  await Promise.all(Array.from({ length: 20 }, async () => {
    while (next < count) {
      next++
      const target = targets[Math.floor(Math.random() * targets.length)]
      let asker = askers[Math.floor(Math.random() * askers.length)]
      if (asker === target) asker = askers[(askers.indexOf(asker) + 1) % askers.length]
      const answer = await asker.host.call('resolve', { index: asker.index, name: target.name, expect: target.peerId })
      if (answer.code !== undefined) failures[answer.code] = (failures[answer.code] ?? 0) + 1
      else ms.push(answer.ms)
    }
  }))
  const messages = (await sent(senders) - before) / count
  return { p50: percentile(ms, 0.5), p99: percentile(ms, 0.99), max: ms.length === 0 ? 0 : Math.max(...ms), n: ms.length, messages, failures }
}

async function lookups (list) {
  const sum = { local: 0, nearby: 0, iterative: 0, none: 0 }
  for (const h of list) for (const s of await h.call('stats')) for (const k of Object.keys(sum)) sum[k] += s.lookups[k]
  return sum
}
const since = (a, b) => Object.fromEntries(Object.keys(b).map(k => [k, b[k] - a[k]]))

const started = performance.now()
const load = loadavg().map(n => n.toFixed(1)).join(', ')
const sizes = []
let churn
for (const [i, size] of SIZES.entries()) {
  const t0 = performance.now()
  const { nodes, bootstrap } = await startRegistries('svc', size)
  const startSeconds = (performance.now() - t0) / 1000
  await Promise.all(nodes.map(async n => { await n.host.call('advertise', { index: n.index, name: n.name, wait: 'published' }) }))
  const publishSeconds = (performance.now() - t0) / 1000 - startSeconds
  await sleep(2000)
  const networkHosts = [...new Set(nodes.map(n => n.host))]
  const before = await lookups(networkHosts)
  const figures = await resolves(nodes, nodes, RESOLVES)
  const found = since(before, await lookups(networkHosts))
  sizes.push({ size: nodes.length, processes: networkHosts.length, startSeconds, publishSeconds, ...figures, found })
  console.log(`${nodes.length} registries: start ${startSeconds.toFixed(1)} s, publish ${publishSeconds.toFixed(1)} s, resolve p50 ${figures.p50.toFixed(1)} / p99 ${figures.p99.toFixed(1)} ms, ${figures.messages.toFixed(1)} requests per resolve, found ${JSON.stringify(found)}, failures ${JSON.stringify(figures.failures)}`)

  if (i === SIZES.length - 1) {
    // Churn on the largest: a third killed (whole processes), as many join.
    const doomed = new Set(networkHosts.slice(-Math.max(1, Math.round(networkHosts.length / 3))))
    const dead = nodes.filter(n => doomed.has(n.host))
    const alive = nodes.filter(n => !doomed.has(n.host))
    for (const h of doomed) h.child.kill('SIGKILL')
    const killed = performance.now()
    const joining = (async () => {
      const { nodes: joined } = await startRegistries('new', dead.length, bootstrap)
      await Promise.all(joined.map(async n => { await n.host.call('advertise', { index: n.index, name: n.name }) }))
      return joined
    })()
    const during = await resolves(alive, alive, RESOLVES)
    const joined = await joining
    const live = [...alive, ...joined]
    const liveHosts = [...new Set(live.map(n => n.host))]
    const afterJoin = await resolves(live, live, RESOLVES)
    // The tables heal: how long until no live registry's routing table holds a dead peer.
    const ids = dead.map(n => n.peerId)
    let healedSeconds
    const heldAt = []
    for (;;) {
      const held = (await Promise.all(liveHosts.map(async h => await h.call('table', { ids })))).flat().reduce((s, t) => s + t.held, 0)
      const seconds = (performance.now() - killed) / 1000
      heldAt.push([seconds, held])
      if (held === 0) { healedSeconds = seconds; break }
      if (seconds > 180) break
      await sleep(1000)
    }
    // Past the TTL (the clock moved forward; the live refresh): the dead names are never found.
    await Promise.all(liveHosts.map(async h => { await h.call('skew', { ms: TTL + 1000 }) }))
    await Promise.all(liveHosts.map(async h => { await h.call('refresh') }))
    const ghosts = await resolves(live, dead, smoke ? 10 : 200)
    const ghostCodes = ghosts.failures
    churn = { killed: dead.length, joined: joined.length, during, afterJoin, healedSeconds, heldAt: heldAt.filter((_, k) => k % 5 === 0).slice(0, 12), ghosts: { returned: ghosts.n, ...ghostCodes } }
    console.log(`churn: ${dead.length} killed, ${joined.length} joined; during p50 ${during.p50.toFixed(1)} / p99 ${during.p99.toFixed(1)} ms, failures ${JSON.stringify(during.failures)}; tables healed in ${healedSeconds?.toFixed(1) ?? '> 180'} s; dead names past the TTL: ${JSON.stringify(churn.ghosts)}`)
  }
  await stopHosts(networkHosts.concat(hosts.filter(h => !networkHosts.includes(h))))
  hosts.length = 0
}

const ms = v => v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`
const fails = f => Object.keys(f).length === 0 ? '0' : Object.entries(f).map(([k, v]) => `${v} ${k}`).join(', ')
const lines = [
  '<!-- discovery-churn:begin -->',
  '## Service discovery on larger networks and under churn (`node bench/discovery-churn.mjs`)',
  '',
  `Node ${process.versions.node}; loopback networks of registries, ${PER} per process (a process is a host: test/discovery/fixtures/registry-host.mjs), on 2 shared cores (load average at the start: ${load}); every registry advertises one service (published in full before the resolves); ${RESOLVES} resolves of random services from random registries, 20 in flight, every record checked; requests per resolve: kad-dht messages, providers and record requests the registries sent, counted where they were sent. ${new Date().toISOString().slice(0, 10)}${smoke ? ' (smoke sizes)' : ''}.`,
  '',
  '| registries (processes) | start | full publication of all | resolve p50 / p99 / max | failures | requests per resolve | provider found in own store / nearest peers / iterative query |',
  '|---|---|---|---|---|---|---|',
  ...sizes.map(s => `| ${s.size} (${s.processes}) | ${s.startSeconds.toFixed(1)} s | ${s.publishSeconds.toFixed(1)} s | ${ms(s.p50)} / ${ms(s.p99)} / ${ms(s.max)} | ${fails(s.failures)} | ${s.messages.toFixed(2)} | ${s.found.local} / ${s.found.nearby} / ${s.found.iterative}${s.found.none > 0 ? ` (${s.found.none} none)` : ''} |`)
]
if (churn !== undefined) {
  lines.push('', `Churn on the ${SIZES.at(-1)}-registry network: ${churn.killed} registries killed with SIGKILL (whole processes) while ${churn.joined} new ones joined and advertised.`, '',
    '| figure | value |', '|---|---|',
    `| live services resolved during the churn: p50 / p99 / max (failures) | ${ms(churn.during.p50)} / ${ms(churn.during.p99)} / ${ms(churn.during.max)} (${fails(churn.during.failures)}) |`,
    `| after the new ones joined, old and new services: p50 / p99 / max (failures) | ${ms(churn.afterJoin.p50)} / ${ms(churn.afterJoin.p99)} / ${ms(churn.afterJoin.max)} (${fails(churn.afterJoin.failures)}) |`,
    `| the routing tables healed (no live table holds a dead peer) after | ${churn.healedSeconds === undefined ? 'not within 180 s' : `${churn.healedSeconds.toFixed(1)} s`} (dead entries left over time: ${churn.heldAt.map(([s, h]) => `${h} at ${s.toFixed(0)} s`).join(', ')}) |`,
    `| resolves of the dead names past their TTL: returned / not found / other | ${churn.ghosts.returned} / ${churn.ghosts.ERR_DISCOVERY_NOT_FOUND ?? 0} / ${Object.entries(churn.ghosts).filter(([k]) => k !== 'returned' && k !== 'ERR_DISCOVERY_NOT_FOUND').map(([k, v]) => `${v} ${k}`).join(', ') || '0'} |`)
}
lines.push(`<!-- discovery-churn:end -->`)
const section = lines.join('\n')
console.log(`\n${section}\n\n(${((performance.now() - started) / 1000).toFixed(0)} s)`)

const problems = []
for (const s of sizes) if (Object.keys(s.failures).length > 0) problems.push(`${s.size} registries: ${fails(s.failures)}`)
if (churn !== undefined) {
  if (Object.keys(churn.during.failures).length > 0) problems.push(`during the churn: ${fails(churn.during.failures)}`)
  if (churn.ghosts.returned > 0) problems.push(`${churn.ghosts.returned} dead names returned past their TTL`)
}
for (const p of problems) console.error(`${smoke ? 'FAILED' : 'note'}: ${p}`)
if (smoke && problems.length > 0) process.exitCode = 1
if (!smoke) {
  writeMarkedSection(section)
}
process.exit(process.exitCode ?? 0)
