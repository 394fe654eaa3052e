/**
 * Reconnects in discovery (issue 24): a registry reconnects to a peer it dialled before with
 * session resumption (and its first streams as 0-RTT data, see ServiceRegistry.create()), where a
 * peer it never dialled costs a full handshake. Registries redial a routing-table peer whose last
 * connection closed (unreachable.ts), so a reconnect happens both ways: by that, or by a resolve.
 */
import type { Connection } from '@libp2p/interface'
import { afterEach, describe, expect, it } from 'vitest'
import { quicConnectionOf } from '../../src/libp2p/index.js'
import { Network } from './network.js'

const net = new Network()
afterEach(async () => { await net.stop() })

describe('a registry reconnecting to a provider', () => {
  it('resumes the session of its earlier connection, and resolves as before', async () => {
    const [provider, client] = await net.members(2)
    await provider.advertise('reconnect', { metadata: { n: 1 }, wait: 'published' })
    const outbound: Connection[] = []
    client.libp2p.addEventListener('connection:open', event => {
      if (event.detail.remotePeer.equals(provider.peerId) && event.detail.direction === 'outbound') outbound.push(event.detail)
    })
    expect((await client.resolve('reconnect', { timeout: 10_000 })).peerId).toBe(provider.peerId.toString())
    for (let i = 0; i < 3; i++) {
      const before = outbound.length
      await client.libp2p.hangUp(provider.peerId)
      // The healing redial, or the resolve's own dial: either way a new outbound connection.
      expect((await client.resolve('reconnect', { timeout: 10_000 })).peerId).toBe(provider.peerId.toString())
      await expect.poll(() => outbound.length).toBeGreaterThan(before)
    }
    // Every outbound connection after the first resumed (the first connection between them may
    // have been the provider's, inbound here: then the first outbound one was a full handshake).
    const resumed = outbound.map(c => quicConnectionOf(c)?.sessionResumed)
    expect(resumed.length).toBeGreaterThanOrEqual(3)
    expect(resumed.slice(1).every(r => r === true), JSON.stringify(resumed)).toBe(true)
  })
})
