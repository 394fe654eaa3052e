// js-libp2p workloads over any libp2p transport: bulk on one stream, echo on new streams, and
// connection setup. The chainsafe and libp2p-msquic impls run them, so both are measured alike.
// A run that hangs is reported as a hang after the timeout, never retried.
import { createLibp2p } from 'libp2p'
import { CHUNK, MiB, mainThreadCpuMs, runOps } from '../lib.mjs'
import { summarise } from './node-msquic.mjs'

/** The workloads, with nodes made on `transport()` (a fresh transport factory per node). */
export function libp2pWorkloads (transport) {
  const make = (listen) => createLibp2p({
    addresses: { listen: listen ? ['/ip4/127.0.0.1/udp/0/quic-v1'] : [] },
    transports: [transport()],
    connectionManager: { maxConnections: 100000 }
  })

  const length = chunk => chunk.byteLength

  async function send (stream, total) {
    for (let sent = 0; sent < total; sent += CHUNK.length) {
      if (!stream.send(CHUNK)) await stream.onDrain()
    }
    await stream.close()
  }

  async function pair (protocol, handler) {
    const server = await make(true)
    await server.handle(protocol, handler, { maxInboundStreams: 100000 })
    const client = await make(false)
    const connection = await client.dial(server.getMultiaddrs()[0])
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
    const server = await make(true)
    const address = server.getMultiaddrs()[0]
    // libp2p keeps one connection per peer: each concurrent dialer is its own node.
    const clients = await Promise.all(Array.from({ length: concurrency }, () => make(false)))
    let next = 0
    const result = await runOps({ total: connections, concurrency, timeoutMs }, async () => {
      const client = clients[next++ % clients.length]
      const connection = await client.dial(address)
      await connection.close()
    })
    if (!result.hung) {
      await Promise.all(clients.map(c => c.stop()))
      await server.stop()
    }
    return { connectionsPerSecond: result.completed / result.seconds, completed: result.completed, errors: result.errors, hung: result.hung }
  }

  return { bulk, echo, handshakes }
}
