// Inbound admission before the QUIC handshake: js-libp2p's own rules, applied natively-early.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import type { Libp2p } from '@libp2p/interface'
import { TransientConnectionManager } from '../../src/limits/index.js'
import { parseQuicAddress, quicConnectionOf, type MsQuicLibp2pListener, type MsQuicTransport } from '../../src/libp2p/index.js'
import { stalledClients } from '../flood.js'
import { until } from '../helpers.js'
import { createNode, type NodeOptions, type TestNode } from './nodes.js'

const nodes: Libp2p[] = []
afterEach(async () => { await Promise.all(nodes.splice(0).map(async node => await node.stop())) })
const node = async (init: NodeOptions = {}): Promise<TestNode> => {
  const made = await createNode(init)
  nodes.push(made)
  return made
}
/** Our libp2p listener inside a node (js-libp2p keeps it in its transport manager). */
const listenerOf = (server: Libp2p): MsQuicLibp2pListener => (server as any).components.transportManager.getListeners()[0]
/** Our transport inside a node. */
const transportOf = (libp2p: Libp2p): MsQuicTransport => (libp2p as any).components.transportManager.getTransports()[0]

describe('libp2p admission before the handshake', () => {
  it("should refuse a peer on the node's deny list before any handshake", async () => {
    const server = await node({ connectionManager: { deny: ['/ip4/127.0.0.1/ipcidr/32'] } })
    const client = await node()
    await expect(client.dial(server.getMultiaddrs()[0])).rejects.toThrow()
    expect(listenerOf(server).admission?.refused.deny).toBe(1)
    expect(listenerOf(server).quic?.stats().refusedBy.admission).toBe(1)
    expect(server.getConnections()).toHaveLength(0)
  })

  it("should apply the node's per-host rate (inboundConnectionThreshold) as connections arrive", async () => {
    const server = await node({ connectionManager: { inboundConnectionThreshold: 2 } })
    const clients = await Promise.all([0, 1, 2].map(async () => await node()))
    const results = await Promise.allSettled(clients.map(async client => await client.dial(server.getMultiaddrs()[0])))
    expect(results.filter(r => r.status === 'fulfilled')).toHaveLength(2)
    expect(listenerOf(server).admission?.refused.rate).toBe(1)
  })

  it("should count handshakes against the node's maxIncomingPendingConnections", async () => {
    const server = await node({ connectionManager: { maxIncomingPendingConnections: 2 } })
    const port = Number(server.getMultiaddrs()[0].toString().split('/')[4])
    const stalled = stalledClients(port, 'libp2p', 2)
    try {
      const client = await node()
      await until(() => listenerOf(server).quic?.stats().handshaking === 2, 'two stalled handshakes')
      await expect(client.dial(server.getMultiaddrs()[0])).rejects.toThrow()
      expect(listenerOf(server).quic?.stats().refusedBy.handshakes).toBe(1)
    } finally {
      stalled.abort()
      await Promise.all(stalled.attempts)
    }
  })

  it('should ask the connection gater before the handshake', async () => {
    let asked = 0
    const server = await node({ connectionGater: { denyInboundConnection: async () => { asked++; return true } } })
    const client = await node()
    await expect(client.dial(server.getMultiaddrs()[0])).rejects.toThrow()
    expect(asked).toBe(1)
    expect(listenerOf(server).admission?.refused.gater).toBe(1)
  })

  it('should hold each admitted connection in a transient reservation until it closes', async () => {
    const transient = new TransientConnectionManager({ budget: 1, ttl: 60_000 })
    // Left to the manager's owner to promote (else the transport promotes after the upgrade, and a
    // promoted connection leaves the transient budget: see the tests below).
    const server = await node({ options: { admission: { transient, promoteOnUpgrade: false } } })
    const [first, second] = await Promise.all([node(), node()])
    const connection = await first.dial(server.getMultiaddrs()[0])
    expect(transient.count).toBe(1)
    await until(() => server.getConnections().length === 1, 'the inbound connection')
    const { host, port } = parseQuicAddress(server.getConnections()[0].remoteAddr)
    expect(listenerOf(server).admission?.reservationOf({ address: host, port })?.state).toBe('reserved')
    await expect(second.dial(server.getMultiaddrs()[0])).rejects.toThrow()
    expect(listenerOf(server).admission?.refused.transient).toBe(1)
    await connection.close()
    await until(() => transient.count === 0, 'the reservation to be released')
    expect(transient.stats()).toMatchObject({ reserved: 1, rejected: { budget: 1 } })
  })
})

// The transport's one admission model: each connection holds one transient reservation, keyed by
// its QUIC connection, from admission (or the dial) to close; whoever learns the peer promotes it
// (the transport after the upgrade, or the manager's owner, as the DHT does); and it comes back on
// every path a connection can end by: a refused upgrade, an aborted dial, a peer killed outright.
describe('one transient reservation per connection', () => {
  it('should count one connection once, from admission to close, promoted by the owner that learns the peer', async () => {
    const transient = new TransientConnectionManager<unknown>({ budget: 8, ttl: 60_000 })
    // The manager's owner promotes (the DHT's part when its routing table takes the peer).
    const server = await node({ options: { admission: { transient, promoteOnUpgrade: false } } })
    const client = await node()
    const connection = await client.dial(server.getMultiaddrs()[0])
    await until(() => server.getConnections().length === 1, 'the inbound connection')
    const inbound = server.getConnections()[0]
    const reservation = transportOf(server).reservationOf(inbound)
    expect(reservation?.key).toBe(quicConnectionOf(inbound)?.id)
    expect(reservation?.state).toBe('reserved')
    expect(transient.stats()).toMatchObject({ count: 1, reserved: 1 })
    expect(reservation?.promote(client.peerId.toString()).state).toBe('promoted')
    expect(transportOf(server).reservationOf(inbound)).toBe(reservation)
    await connection.close()
    await until(() => transportOf(server).reservationOf(inbound) === undefined, 'the connection to close')
    expect(transient.stats()).toMatchObject({ count: 0, reserved: 1, promoted: 1, released: 0, rejected: { duplicate: 0 } })
  })

  it('should promote both ends after the upgrade by default, each with the peer it learnt', async () => {
    const [serverSide, clientSide] = [0, 1].map(() => new TransientConnectionManager<unknown>({ budget: 8, ttl: 60_000 }))
    const server = await node({ options: { admission: { transient: serverSide } } })
    const client = await node({ options: { admission: { transient: clientSide } } })
    const connection = await client.dial(server.getMultiaddrs()[0])
    expect(transportOf(client).reservationOf(connection)?.outcome).toMatchObject({ state: 'promoted', peer: server.peerId.toString() })
    await until(() => serverSide.stats().promoted === 1, 'the inbound promotion')
    expect(transportOf(server).reservationOf(server.getConnections()[0])?.outcome?.peer).toBe(client.peerId.toString())
    expect([serverSide.count, clientSide.count]).toEqual([0, 0])
    expect([serverSide.stats().reserved, clientSide.stats().reserved]).toEqual([1, 1])
  })

  it('should refuse a dial over the budget with a coded error, and release its connection', async () => {
    const transient = new TransientConnectionManager<unknown>({ budget: 1, ttl: 60_000 })
    const [first, second] = await Promise.all([node(), node()])
    const client = await node({ options: { admission: { transient, promoteOnUpgrade: false } } })
    await client.dial(first.getMultiaddrs()[0])
    await expect(client.dial(second.getMultiaddrs()[0])).rejects.toMatchObject({ code: 'ERR_LIBP2P_TRANSIENT_LIMIT' })
    expect(transient.stats()).toMatchObject({ count: 1, reserved: 1, rejected: { budget: 1 } })
  })
})

describe('reservations come back on every path', () => {
  it('should release the reservation of an upgrade the node refused', async () => {
    const transient = new TransientConnectionManager<unknown>({ budget: 4, ttl: 60_000 })
    const server = await node({ options: { admission: { transient } }, connectionGater: { denyInboundEncryptedConnection: () => true } })
    const client = await node()
    await client.dial(server.getMultiaddrs()[0]).catch(() => {})
    await until(() => transient.stats().released === 1, 'the refused connection\'s release')
    expect(transient.stats()).toMatchObject({ count: 0, reserved: 1, promoted: 0, released: 1 })
  })

  it('should release the reservation of a dial aborted during its upgrade', async () => {
    const transient = new TransientConnectionManager<unknown>({ budget: 4, ttl: 60_000 })
    const server = await node()
    // The gater never answers: the dial waits in the upgrade until its signal aborts.
    const client = await node({ options: { admission: { transient } }, connectionGater: { denyOutboundConnection: async () => await new Promise<boolean>(() => {}) } })
    const controller = new AbortController()
    const dialing = client.dial(server.getMultiaddrs()[0], { signal: controller.signal })
    await until(() => transient.count === 1, 'the dial\'s reservation')
    controller.abort(new Error('the caller gave up'))
    await expect(dialing).rejects.toThrow()
    await until(() => transient.count === 0, 'the aborted dial\'s release')
    expect(transient.stats()).toMatchObject({ reserved: 1, promoted: 0, released: 1 })
  })

  it('should release the reservation of a peer killed outright, when its connection times out', async () => {
    const transient = new TransientConnectionManager<unknown>({ budget: 4, ttl: 60_000 })
    const server = await node({ options: { idleTimeout: 1_500, admission: { transient, promoteOnUpgrade: false } } })
    // The peer is a node in another process (the package as installed, dist/), killed with SIGKILL:
    // it sends nothing more, not even a close.
    const script = `
      const { createLibp2p } = await import('libp2p')
      const { multiaddr } = await import('@multiformats/multiaddr')
      const { msquic } = await import('node-msquic/libp2p')
      const node = await createLibp2p({ transports: [msquic()], connectionMonitor: { enabled: false } })
      await node.dial(multiaddr(process.env.SERVER))
      console.log('connected')
      setInterval(() => {}, 60_000)`
    const peer = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, SERVER: server.getMultiaddrs()[0].toString() }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    peer.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    try {
      const line = await Promise.race([once(peer.stdout, 'data').then(([chunk]) => String(chunk)), once(peer, 'exit').then(() => undefined)])
      if (line === undefined) throw new Error(`The peer exited before it connected: ${stderr}`)
      expect(line).toContain('connected')
      await until(() => transient.count === 1, 'the peer\'s reservation')
    } finally {
      peer.kill('SIGKILL')
    }
    await until(() => transient.count === 0, 'the killed peer\'s release')
    expect(transient.stats()).toMatchObject({ reserved: 1, promoted: 0, released: 1, expired: 0 })
    expect(server.getConnections()).toHaveLength(0)
  })
})
