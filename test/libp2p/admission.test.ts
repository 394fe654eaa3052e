// Inbound admission before the QUIC handshake: js-libp2p's own rules, applied natively-early.
import { afterEach, describe, expect, it } from 'vitest'
import type { Libp2p } from '@libp2p/interface'
import { TransientConnectionManager } from '../../src/limits/index.js'
import { parseQuicAddress, type MsQuicLibp2pListener } from '../../src/libp2p/index.js'
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
    const server = await node({ options: { admission: { transient } } })
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
