import { createHash } from 'node:crypto'
import { describe, it, expect } from 'vitest'
import { connect, listen } from '../../src/index.js'
import { lossyRelay } from '../lossy-relay.js'
import { readAll, testCertificate } from '../helpers.js'

// This kernel has no netem (sch_netem is not built), and MsQuic's own loss injection exists only in
// its debug builds, so the impaired path is a userspace UDP relay.
describe('a lossy, reordering path', () => {
  it('should deliver 256 MiB intact through 1% loss, reordering and 20 ms of delay', async () => {
    const { cert, key } = await testCertificate()
    const settings = { congestionControl: 'bbr' as const, idleTimeout: 30_000 }
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key, ...settings })
    const relay = await lossyRelay(listener.address().port, { loss: 0.01, delayMs: 10, reorder: 0.02, seed: 42 })
    try {
      const client = await connect({ host: '127.0.0.1', port: relay.port, alpn: 'test', ca: cert, ...settings })
      const server = await listener.accept()
      const total = 256 * 2 ** 20
      const sentHash = createHash('sha256')
      const stream = await client.openStream({ unidirectional: true })
      const started = Date.now()
      const sending = (async () => {
        for (let i = 0, sent = 0; sent < total; i++, sent += 64 * 1024) {
          const chunk = Buffer.alloc(64 * 1024, i % 253)
          sentHash.update(chunk)
          if (!stream.write(chunk)) await new Promise(resolve => stream.once('drain', resolve))
        }
        stream.end()
      })()
      const inbound = await server.acceptStream()
      const receivedHash = createHash('sha256')
      let received = 0
      for await (const chunk of inbound.iterator({ destroyOnReturn: false })) {
        receivedHash.update(chunk as Buffer)
        received += (chunk as Buffer).length
      }
      await sending
      const seconds = (Date.now() - started) / 1000
      const stats = client.stats()
      expect(received).toBe(total)
      expect(receivedHash.digest('hex')).toBe(sentHash.digest('hex'))
      expect(relay.stats.dropped).toBeGreaterThan(0)
      expect(stats.packetsLost).toBeGreaterThan(0)
      console.log(`lossy path (1% loss each way, 10 ms each way, 2% reordered, BBR): 256 MiB intact in ${seconds.toFixed(1)} s ` +
        `(${(256 / seconds).toFixed(1)} MiB/s); relay dropped ${relay.stats.dropped} and reordered ${relay.stats.reordered} of ${relay.stats.relayed + relay.stats.dropped} packets; ` +
        `the client sent ${stats.packetsSent} packets and counted ${stats.packetsLost} lost (the relay's socket also overflows when ` +
        `the sender outpaces it, so real loss is higher than 1%); RTT ${(stats.rttUs / 1000).toFixed(1)} ms`)
      await client.close()
      await readAll(inbound).catch(() => {})
    } finally {
      relay.close()
      await listener.close()
    }
  }, 180_000)
})
