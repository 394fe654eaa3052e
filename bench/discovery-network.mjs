// The multi-process half of bench/discovery.mjs: a loopback network of registries, each in a
// process of its own, as a deployment runs them (on one thread, 31 nodes' kad-dht and peer-store
// work queues behind each other: a lookup that goes to the network then waits for its three
// responders' work and everyone else's too).
//   `measureNetwork(transport, size, entry)`: runs in bench/discovery.mjs's measuring child; forks
//     the nodes, drives them over IPC and returns the figures. Every time is taken inside the node
//     that did the work (a resolve on the resolving node's thread; advertise-to-discoverable from
//     the advertising node's clock to the resolving node's, one machine's clock), never with the
//     IPC hop in it.
//   `node bench/discovery-network.mjs --node <transport> <entry> [bootstrap]`: one registry,
//     serving the ops advertise, published, resolve, find, stats and stop from its parent (and probe:
//     its resolves' phases and event-loop delay, when started with `probe`, see discovery-probe.mjs).
import { fork } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { percentile } from './lib.mjs'

const self = fileURLToPath(import.meta.url)

/** The libp2p options of each transport (create() runs node-msquic when given none). */
export async function transportOptions (name) {
  if (name === 'node-msquic') return { listen: ['/ip4/127.0.0.1/udp/0/quic-v1'], libp2p: {} }
  if (name === 'chainsafe') {
    const { quic } = await import('@chainsafe/libp2p-quic')
    return { listen: ['/ip4/127.0.0.1/udp/0/quic-v1'], libp2p: { transports: [quic()] } }
  }
  const [{ tcp }, { noise }, { yamux }] = await Promise.all([import('@libp2p/tcp'), import('@chainsafe/libp2p-noise'), import('@chainsafe/libp2p-yamux')])
  return { listen: ['/ip4/127.0.0.1/tcp/0'], libp2p: { transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] } }
}

/** The sum of registries' stats().lookups. */
export function sumLookups (list) {
  const sum = { local: 0, nearby: 0, iterative: 0, none: 0 }
  for (const lookups of list) for (const key of Object.keys(sum)) sum[key] += lookups[key]
  return sum
}

/** The provider searches of each source between two sums. */
export function lookupsSince (before, after) {
  return Object.fromEntries(Object.keys(after).map(key => [key, after[key] - before[key]]))
}

/** p50, p99 and count of each kind's samples (ms), and the median of the nodes' automatic hedges. */
export function latencies (kinds, hedgeDelays) {
  const figures = Object.fromEntries(Object.entries(kinds).map(([kind, samples]) => [kind, { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99), n: samples.length }]))
  return { ...figures, hedgeDelay: hedgeDelays[Math.floor(hedgeDelays.length / 2)] }
}

/**
 * `rounds` rounds, each running every kind once in a random order, 5 ms apart: every kind sees the
 * same network, and the providers a resolve cancelled wind down in the pause, not in the next one.
 */
export async function interleave (rounds, kinds, run) {
  for (let n = 0; n < rounds; n++) {
    const order = [...kinds]
    for (let i = order.length - 1; i > 0; i--) { const k = Math.floor(Math.random() * (i + 1)); [order[i], order[k]] = [order[k], order[i]] }
    for (const kind of order) {
      await new Promise(resolve => setTimeout(resolve, 5))
      await run(kind)
    }
  }
}

/** Inbound streams our transport refused as busy (its negotiation limits), or 0 on another transport. */
export function negotiationsRefused (registry) {
  return registry.libp2p.components.transportManager.getTransports().reduce((n, t) => n + (t.negotiation?.counts.busy ?? 0), 0)
}

/** A wall-clock instant in milliseconds, sub-millisecond and comparable across this machine's processes. */
const instant = () => performance.timeOrigin + performance.now()

/** One node process: a registry that runs what its parent sends. */
async function serveNode (transport, entry, bootstrap) {
  const probe = process.env.NODE_MSQUIC_BENCH_PROBE === '1' ? await import('./discovery-probe.mjs') : undefined
  probe?.startProbe()
  const { ServiceRegistry } = await import(pathToFileURL(entry).href)
  const registry = await ServiceRegistry.create({ ...await transportOptions(transport), bootstrap: bootstrap === undefined ? [] : [bootstrap], defaultTtl: 10 * 60_000, bootstrapTimeout: 30_000 })
  const advertisements = new Map()
  const ops = {
    async advertise ({ name, metadata, wait }) {
      const at = instant()
      advertisements.set(name, await registry.advertise(name, { metadata, wait }))
      return { at }
    },
    async published ({ name }) { await advertisements.get(name)?.published },
    async resolve ({ name, options, expect }) {
      const started = performance.now()
      const record = await registry.resolve(name, options)
      const ms = performance.now() - started
      if (expect !== undefined && record.peerId !== expect) throw new Error(`wrong provider for ${name}`)
      return { ms }
    },
    // Resolves `name` until found (NOT_FOUND: not yet discoverable); the instant it was found.
    async find ({ name }) {
      for (;;) {
        try {
          await registry.resolve(name, { timeout: 2000 })
          return { at: instant() }
        } catch (error) {
          if (error.code !== 'ERR_DISCOVERY_NOT_FOUND') throw error
        }
      }
    },
    stats () {
      const { lookups, hedgeDelay, routingTable } = registry.stats()
      return { lookups, hedgeDelay, routingTable, busy: negotiationsRefused(registry), pending: [...registry.queries.pending.values()].filter(q => q.kind !== 'advertise').length }
    },
    probe () { return probe?.takeProbe() },
    async stop () { await registry.stop() }
  }
  process.on('message', async ({ id, op, args }) => {
    try {
      process.send({ id, result: await ops[op](args) })
    } catch (error) {
      process.send({ id, error: error.message, code: error.code })
    }
    if (op === 'stop') process.disconnect()
  })
  // The parent gone (killed at its time limit): so are we.
  process.on('disconnect', () => process.exit(0))
  process.send({ ready: { multiaddr: registry.multiaddrs[0].toString(), peerId: registry.peerId.toString() } })
}

/** Forks one node process; resolves with a handle once its registry listens. `probe`: see serveNode. */
export async function startNode (transport, entry, bootstrap, { probe = false } = {}) {
  const child = fork(self, ['--node', transport, entry, ...(bootstrap === undefined ? [] : [bootstrap])], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: probe ? { ...process.env, NODE_MSQUIC_BENCH_PROBE: '1' } : process.env
  })
  let stderr = ''
  child.stderr.on('data', d => { stderr += d })
  const waiting = new Map()
  let nextId = 0
  const ready = await new Promise((resolve, reject) => {
    child.on('message', message => {
      if (message.ready !== undefined) return resolve(message.ready)
      const call = waiting.get(message.id)
      waiting.delete(message.id)
      if (message.error !== undefined) call?.reject(Object.assign(new Error(message.error), { code: message.code }))
      else call?.resolve(message.result)
    })
    child.on('exit', code => {
      const error = new Error(`a ${transport} node exited (${code}): ${stderr.trim().split('\n').pop() ?? ''}`)
      reject(error)
      for (const call of waiting.values()) call.reject(error)
      waiting.clear()
    })
  })
  return {
    ...ready,
    child,
    call: async (op, args = {}) => await new Promise((resolve, reject) => {
      const id = nextId++
      waiting.set(id, { resolve, reject })
      child.send({ id, op, args })
    })
  }
}

/** Runs task(0 … count - 1), `concurrency` at a time. */
export async function pool (count, concurrency, task) {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => { while (next < count) await task(next++) }))
}

/**
 * The network figures of one transport: `size.nodes` registries and a bootstrap node, each in its
 * own process; the same workload as the one-process measurement of bench/discovery.mjs.
 */
export async function measureNetwork (transport, size, entry) {
  const started = performance.now()
  const bootstrapNode = await startNode(transport, entry)
  const nodes = []
  for (let i = 0; i < size.nodes; i += 5) nodes.push(...await Promise.all(Array.from({ length: Math.min(5, size.nodes - i) }, async () => await startNode(transport, entry, bootstrapNode.multiaddr))))
  const joinSeconds = (performance.now() - started) / 1000
  const all = [bootstrapNode, ...nodes]
  const errors = []
  try {
    // Set-up, not measured: every node provides one name of its own; `multi` names have three providers.
    await pool(nodes.length, 5, async i => { await nodes[i].call('advertise', { name: `single-${i}`, metadata: { i }, wait: 'published' }) })
    await pool(size.multi, 3, async j => {
      for (let k = 0; k < 3; k++) await nodes[(j * 3 + k) % nodes.length].call('advertise', { name: `multi-${j}`, metadata: { j, k }, wait: 'published' })
    })
    await new Promise(resolve => setTimeout(resolve, 500))

    const rand = n => Math.floor(Math.random() * n)
    const lookupsOf = async () => sumLookups(await Promise.all(all.map(async n => (await n.call('stats')).lookups)))
    const lookupsBefore = await lookupsOf()
    const single = []
    const fanOut = []
    const hedged = []
    const resolveOne = async kind => {
      let name, from, expect, options
      if (kind === single) {
        const target = rand(nodes.length)
        from = rand(nodes.length)
        if (from === target) from = (from + 1) % nodes.length
        name = `single-${target}`
        expect = nodes[target].peerId
        options = { fanOut: 1 }
      } else {
        const j = rand(size.multi)
        // Never from one of the name's own providers (it would answer from its own record).
        const providers = [0, 1, 2].map(k => (j * 3 + k) % nodes.length)
        from = rand(nodes.length)
        while (providers.includes(from)) from = (from + 1) % nodes.length
        name = `multi-${j}`
        options = kind === fanOut ? { fanOut: 3, hedge: 0 } : { fanOut: 3 }
      }
      try {
        const { ms } = await nodes[from].call('resolve', { name, options, expect })
        kind.push(ms)
      } catch (error) {
        errors.push(error.message)
      }
    }
    await interleave(size.resolves, [single, fanOut, hedged], resolveOne)
    const lookups = lookupsSince(lookupsBefore, await lookupsOf())
    const stats = await Promise.all(nodes.map(async n => await n.call('stats')))
    const hedgeDelays = stats.map(s => s.hedgeDelay).sort((a, b) => a - b)

    // Advertise-to-discoverable, each sample on a network at rest (the previous full publication done).
    const fresh = []
    let previous
    for (let n = 0; n < size.fresh; n++) {
      if (previous !== undefined) await previous.node.call('published', { name: previous.name }).catch(() => {})
      const a = rand(nodes.length)
      const b = (a + 1 + rand(nodes.length - 1)) % nodes.length
      previous = { node: nodes[a], name: `fresh-${n}` }
      try {
        const { at: advertised } = await nodes[a].call('advertise', { name: previous.name })
        const { at: found } = await nodes[b].call('find', { name: previous.name })
        fresh.push(found - advertised)
      } catch (error) {
        errors.push(error.message)
      }
    }
    const pending = (await Promise.all(all.map(async n => (await n.call('stats')).pending))).reduce((a, b) => a + b, 0)
    return {
      nodes: all.length,
      joinSeconds,
      ...latencies({ single, fanOut, hedged, fresh }, hedgeDelays),
      lookups,
      errors: errors.slice(0, 5),
      errorCount: errors.length,
      pending
    }
  } finally {
    await Promise.all(all.map(async n => {
      const exited = new Promise(resolve => { if (n.child.exitCode !== null) resolve(); else n.child.once('exit', resolve) })
      await n.call('stop').catch(() => {})
      await exited
    }))
  }
}

if (process.argv[1] === self && process.argv[2] === '--node') await serveNode(process.argv[3], process.argv[4], process.argv[5])
