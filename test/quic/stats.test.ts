/**
 * Statistics start at zero and count what happened (MsQuic 2.5 leaves its binding's drop counter
 * uninitialised; the listener reports drops since it started).
 */
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { describe, it, expect } from 'vitest'
import { listen } from '../../src/index.js'
import { pair, testCertificate, until } from '../helpers.js'

describe('statistics', () => {
  it('should start every new listener at zero and count the garbage it drops', async () => {
    const { cert, key } = await testCertificate()
    const socket = createSocket('udp4')
    socket.bind(0, '127.0.0.1')
    await once(socket, 'listening')
    // One after another, so a new binding may land in the memory of the last (which had drops).
    for (let round = 0; round < 4; round++) {
      const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key })
      expect(listener.stats()).toEqual({
        pending: 0,
        handshaking: 0,
        waiting: 0,
        refused: 0,
        refusedBy: { handshakes: 0, backlog: 0, admission: 0 },
        retrying: false,
        accepted: 0,
        rejected: 0,
        droppedPackets: 0
      })
      // Short datagrams with a long header's first byte: too small to be QUIC, dropped by the binding.
      for (let i = 0; i < 50; i++) socket.send(Buffer.from([0xc0, i, 1, 2]), listener.address().port, '127.0.0.1')
      await until(() => (listener.stats().droppedPackets ?? 0) >= 50, 'the drops to be counted')
      expect(listener.stats().droppedPackets).toBeLessThan(1000)
      await listener.close()
    }
    socket.close()
  })

  it('should start a new connection\'s figures from its own traffic', async () => {
    const { listener, client, server } = await pair()
    for (const connection of [client, server]) {
      const stats = connection.stats()
      for (const [name, value] of Object.entries(stats)) {
        expect(Number.isFinite(value), name).toBe(true)
        expect(value, name).toBeGreaterThanOrEqual(0)
        expect(value, name).toBeLessThan(2 ** 40)
      }
      expect(stats.openStreams).toBe(0)
      expect(stats.packetsSent).toBeGreaterThan(0)
    }
    await client.close()
    await listener.close()
  })
})
