// A provider whose connection failed is skipped for a while (UNREACHABLE_HOLD): resolve(), discover(),
// dial() and clients do not pay a failed connection (a timeout, on a host that is gone) again and again.
import { afterEach, describe, expect, it } from 'vitest'
import { DiscoveryErrorCode, type ServiceRecord } from '../../src/discovery/index.js'
import { Network } from './network.js'

const net = new Network()
afterEach(async () => { await net.stop() })

describe('a provider that is gone', () => {
  it('is found out at the first failed connection, then skipped by resolve(), discover() and dial() until it connects again', async () => {
    await net.bootstrap()
    const [gone, live, asker] = await net.members(3)
    await gone.advertise('svc', { ttl: 60_000, wait: 'published' })
    await live.advertise('svc', { ttl: 60_000, wait: 'published' })
    const goneRecord = await asker.resolve('svc', { fanOut: 1, hedge: 0 }).then(async r => r.peerId === gone.peerId.toString() ? r : (await collect(asker)).find(x => x.peerId === gone.peerId.toString())!)
    await gone.stop()
    // Its records are valid for a minute more; the first attempt to reach it fails (the port is closed).
    const found = await collect(asker)
    expect(found.map(r => r.peerId)).toEqual([live.peerId.toString()])
    expect(asker.isUnreachable(gone.peerId)).toBe(true)
    // From then on it is not even dialled: resolves go to the live one, dial() refuses at once.
    for (let i = 0; i < 5; i++) expect((await asker.resolve('svc', { fanOut: 1 })).peerId).toBe(live.peerId.toString())
    await expect(asker.dial(goneRecord, '/x/1')).rejects.toMatchObject({ code: DiscoveryErrorCode.DIAL_FAILED, message: expect.stringContaining('skipped') })
    // A connection that opens again clears the mark.
    asker.unreachable(live.peerId)
    expect(asker.isUnreachable(live.peerId)).toBe(true)
    await asker.libp2p.hangUp(live.peerId)
    await asker.libp2p.dial(live.peerId)
    expect(asker.isUnreachable(live.peerId)).toBe(false)
  })

  it('costs a client\'s calls nothing: each goes to a live provider, the dead one is skipped', async () => {
    await net.bootstrap()
    const providers = await net.members(2)
    for (const p of providers) {
      await p.handle('/echo/1', request => request)
      await p.advertise('echo', { ttl: 60_000, wait: 'published' })
    }
    const caller = await net.member()
    const client = caller.client('echo', { protocol: '/echo/1', watch: { interval: 200 } })
    await client.ready()
    await expect.poll(() => client.providers.length, { timeout: 10_000 }).toBe(2)
    // The one about to go is the one the client prefers (the last that answered).
    for (let i = 0; i < 50 && (await client.request('default', 'warm')).provider !== providers[0].peerId.toString(); i++);
    await providers[0].stop()
    const answered: string[] = []
    for (let i = 0; i < 10; i++) answered.push((await client.request('default', `call ${i}`)).provider)
    expect(new Set(answered)).toEqual(new Set([providers[1].peerId.toString()]))
    // One failed connection at most (then it is skipped, or the watch has dropped it from the pool).
    expect(client.stats().providers.find(p => p.id === providers[0].peerId.toString())?.failures ?? 0).toBeLessThanOrEqual(1)
    await client.close()
  })
})

async function collect (asker: import('../../src/discovery/index.js').ServiceRegistry): Promise<ServiceRecord[]> {
  const out: ServiceRecord[] = []
  for await (const r of asker.discover('svc', { timeout: 5_000 })) out.push(r)
  return out
}
