// js-libp2p workloads over any libp2p transport: bulk on one stream, echo on new streams,
// connection setup (with and without identify) and negotiation overload. The chainsafe,
// libp2p-msquic and libp2p-tcp impls run them, so all are measured alike. A run that hangs is
// reported as a hang after the timeout, never retried.
import { identify } from '@libp2p/identify'
import { createLibp2p } from 'libp2p'
import { CHUNK, MiB, mainThreadCpuMs, percentile, runOps } from '../lib.mjs'
import { summarise } from './node-msquic.mjs'

/**
 * The workloads, with nodes made on `transport()` (a fresh transport factory per node), listening
 * on `listenAddress`, with `extra` libp2p options (a TCP stack's encrypter and muxer).
 */
export function libp2pWorkloads (transport, { listenAddress = '/ip4/127.0.0.1/udp/0/quic-v1', extra = {} } = {}) {
  const make = (listen, services = {}, connectionManager = {}) => createLibp2p({
    addresses: { listen: listen ? [listenAddress] : [] },
    transports: [transport()],
    connectionManager: { maxConnections: 100000, ...connectionManager },
    services,
    ...extra
  })

  const length = chunk => chunk.byteLength

  async function send (stream, total) {
    for (let sent = 0; sent < total; sent += CHUNK.length) {
      if (!stream.send(CHUNK)) await stream.onDrain()
    }
    await stream.close()
  }

  // Both nodes run identify, as every real js-libp2p node does, and the workload starts once it has
  // run both ways (what a peer learns from it may change how streams are opened).
  async function pair (protocol, handler) {
    const server = await make(true, { identify: identify() })
    await server.handle(protocol, handler, { maxInboundStreams: 100000 })
    const client = await make(false, { identify: identify() })
    const identified = Promise.all([client, server].map(node => new Promise(resolve => node.addEventListener('peer:identify', resolve, { once: true }))))
    const connection = await client.dial(server.getMultiaddrs()[0])
    await identified
    return { server, client, connection }
  }

  async function bulk ({ bytes, direction }) {
    let serverReceived = 0
    const { server, client, connection } = await pair('/bulk/1.0.0', async stream => {
      if (direction === 'up') {
        for await (const chunk of stream) serverReceived += length(chunk)
        await stream.close()
      } else {
        await send(stream, bytes)
      }
    })
    const stream = await connection.newStream('/bulk/1.0.0')
    const cpu = mainThreadCpuMs()
    const begin = performance.now()
    let received = 0
    if (direction === 'up') {
      await send(stream, bytes)
      for await (const chunk of stream) received += length(chunk)
      received = serverReceived
    } else {
      await stream.close()
      for await (const chunk of stream) received += length(chunk)
    }
    const seconds = (performance.now() - begin) / 1000
    const cpuMs = mainThreadCpuMs() - cpu
    await client.stop()
    await server.stop()
    if (received !== bytes) throw new Error(`bulk: ${received} of ${bytes} bytes arrived`)
    return { mibPerSecond: bytes / MiB / seconds, seconds, mainThreadCpuMsPerMiB: cpuMs / (bytes / MiB) }
  }

  async function echo ({ streams, concurrency, size, timeoutMs }) {
    const { server, client, connection } = await pair('/echo/1.0.0', async stream => {
      for await (const chunk of stream) stream.send(chunk)
      await stream.close()
    })
    const request = new Uint8Array(size)
    const result = await runOps({ total: streams, concurrency, timeoutMs }, async () => {
      const stream = await connection.newStream('/echo/1.0.0', { maxOutboundStreams: 100000 })
      stream.send(request)
      await stream.close()
      let received = 0
      for await (const chunk of stream) received += length(chunk)
      if (received !== size) throw new Error(`short echo: ${received}`)
    })
    // A hung run leaves libp2p waiting forever: do not wait for stop().
    if (!result.hung) {
      await client.stop()
      await server.stop()
    }
    return summarise(result)
  }

  async function handshakes ({ connections, concurrency, timeoutMs }) {
    // As in setup() below: no per-host rate limit on loopback. (js-libp2p's default of 5 new
    // connections per second per host refuses the rest; node-msquic refuses them before the
    // handshake, so its dials fail, while a transport that checks after the handshake has the
    // dialer's connection closed after its dial succeeded.)
    const server = await make(true, {}, { inboundConnectionThreshold: Infinity, maxIncomingPendingConnections: 100000 })
    const address = server.getMultiaddrs()[0]
    // libp2p keeps one connection per peer: each concurrent dialer is its own node.
    const clients = await Promise.all(Array.from({ length: concurrency }, () => make(false)))
    // A client node is used by one operation at a time: two dials from one node to the same peer
    // share one connection, and the first to close it fails the other.
    const free = [...clients]
    const result = await runOps({ total: connections, concurrency, timeoutMs }, async () => {
      const client = free.pop()
      try {
        const connection = await client.dial(address)
        await connection.close()
      } finally {
        free.push(client)
      }
    })
    if (!result.hung) {
      await Promise.all(clients.map(c => c.stop()))
      await server.stop()
    }
    return { connectionsPerSecond: result.completed / result.seconds, completed: result.completed, errors: result.errors, hung: result.hung }
  }

  // `streams` newStream() calls at once on one connection to a handler that takes `handlerMs`:
  // each ends in success, a busy answer (a RESOURCE_LIMIT_EXCEEDED reset, or ERR_LIBP2P_BUSY),
  // a timeout, or another error; how long each took to its outcome.
  async function overload ({ streams, handlerMs, timeoutMs }) {
    const { server, client, connection } = await pair('/slow/1.0.0', async stream => {
      await new Promise(resolve => setTimeout(resolve, handlerMs))
      await stream.close()
    })
    const outcomes = { ok: 0, busy: 0, timeout: 0, other: 0 }
    const took = []
    const begin = performance.now()
    const one = async () => {
      const t = performance.now()
      try {
        const stream = await connection.newStream('/slow/1.0.0', { maxOutboundStreams: 100000, signal: AbortSignal.timeout(timeoutMs) })
        await stream.close()
        for await (const _ of stream);
        outcomes.ok++
      } catch (error) {
        const busy = error?.code === 'ERR_LIBP2P_BUSY' || /RESOURCE_LIMIT|busy/i.test(String(error?.message))
        const timedOut = error?.name === 'TimeoutError' || error?.name === 'AbortError'
        outcomes[busy ? 'busy' : timedOut ? 'timeout' : 'other']++
      }
      took.push(performance.now() - t)
    }
    let timer
    const hung = await Promise.race([
      Promise.all(Array.from({ length: streams }, one)).then(() => false),
      new Promise(resolve => { timer = setTimeout(() => resolve(true), timeoutMs + 10_000) })
    ])
    clearTimeout(timer)
    const seconds = (performance.now() - begin) / 1000
    if (!hung) {
      await client.stop()
      await server.stop()
    }
    return { ...outcomes, hung, seconds, p50Ms: percentile(took, 0.5), p99Ms: percentile(took, 0.99), maxMs: Math.max(0, ...took) }
  }

  // A new connection per operation until identify has run on it (the peer's protocols known), then
  // closed: what a node pays to meet a peer.
  async function setup ({ connections, concurrency, timeoutMs }) {
    // The server must upgrade (and identify) every connection: no per-host rate limit on loopback.
    const server = await make(true, { identify: identify() }, { inboundConnectionThreshold: Infinity, maxIncomingPendingConnections: 100000 })
    const address = server.getMultiaddrs()[0]
    const clients = await Promise.all(Array.from({ length: concurrency }, () => make(false, { identify: identify() })))
    const free = [...clients]  // one operation per client node at a time (see handshakes())
    const result = await runOps({ total: connections, concurrency, timeoutMs }, async () => {
      const client = free.pop()
      try {
        const identified = new Promise(resolve => {
          const onIdentify = () => { client.removeEventListener('peer:identify', onIdentify); resolve() }
          client.addEventListener('peer:identify', onIdentify)
        })
        const connection = await client.dial(address)
        await identified
        await connection.close()
      } finally {
        free.push(client)
      }
    })
    if (!result.hung) {
      await Promise.all(clients.map(c => c.stop()))
      await server.stop()
    }
    return { connectionsPerSecond: result.completed / result.seconds, completed: result.completed, errors: result.errors, hung: result.hung }
  }

  return { bulk, echo, handshakes, overload, setup }
}
