import { afterEach, describe, expect, it } from 'vitest'
import { AUTO_HEDGE_MIN, HEDGE_DELAY, RECORD_PROTOCOL, type ServiceRegistry } from '../../src/discovery/index.js'
import { Network } from './network.js'

const net = new Network()
afterEach(async () => { await net.stop() })

/**
 * Three providers of `name`, the first `silent` of which take record requests and never answer
 * (their DHT copies stay valid, read after 50 ms); `asked()` counts the requests they took.
 */
async function providers (name: string, silent: number): Promise<{ client: ServiceRegistry, all: ServiceRegistry[], asked: () => number }> {
  await net.bootstrap()
  const all = await net.members(3)
  for (const p of all) await p.advertise(name, { wait: 'published' })
  let asked = 0
  for (const p of all.slice(0, silent)) {
    await p.libp2p.unhandle(RECORD_PROTOCOL)
    await p.libp2p.handle(RECORD_PROTOCOL, () => { asked++ }, { force: true } as any)
  }
  const client = await net.member()
  // Connected to every provider already: the races below are between answers and hedge periods, not
  // connection set-ups (a new connection and its first negotiation take 20 to 80 ms on a busy machine,
  // longer than the DHT copies' 50 ms).
  for (const p of all) await client.libp2p.dial(p.peerId)
  // The silent ones look best, so they are asked first when found together.
  for (const [i, p] of all.slice(0, silent).entries()) for (let n = 0; n < 10 - i; n++) client.reputation.answered(p.peerId.toString(), 1)
  return { client, all, asked: () => asked }
}

describe('resolve() with a hedge', () => {
  it('asks one more provider each hedge period without an answer: the one that answers directly wins', async () => {
    const { client, all } = await providers('hedged', 2)
    const record = await client.resolve('hedged', { fanOut: 3, hedge: 5, timeout: 5_000 })
    expect(record.peerId).toBe(all[2].peerId.toString())
  })

  it('asks only one provider while the hedge period lasts', async () => {
    const { client, all, asked } = await providers('patient', 3)
    const record = await client.resolve('patient', { fanOut: 3, hedge: 60_000, timeout: 5_000 })
    expect(asked()).toBe(1)
    expect(all.map(p => p.peerId.toString())).toContain(record.peerId)
    expect(client.stats().pending).toBe(0)
  })

  it('with hedge 0 asks all fanOut providers at once', async () => {
    const { client, asked } = await providers('parallel', 3)
    await client.resolve('parallel', { fanOut: 3, hedge: 0, timeout: 5_000 })
    expect(asked()).toBe(3)
  })

  it('by default hedges at the 95th percentile of the recent answer latencies: fast ones, soon', async () => {
    const { client, all, asked } = await providers('auto', 3)
    // The seeded answers: 19 of 1 ms; one slow answer more leaves the 95th percentile at 1 ms.
    client.reputation.answered('someone else', 400)
    expect(client.stats().hedgeDelay).toBe(1)
    // None answers directly: all three are asked about 1 ms apart, before the first one's DHT copy
    // is read (after 50 ms), which then answers. (A 50 ms hedge would ask two at most.)
    const record = await client.resolve('auto', { timeout: 5_000 })
    expect(asked()).toBe(3)
    expect(all.map(p => p.peerId.toString())).toContain(record.peerId)
  })

  it('by default hedges at the 95th percentile of the recent answer latencies: slow ones, late', async () => {
    const { client, all, asked } = await providers('auto-slow', 3)
    for (let n = 0; n < 256; n++) client.reputation.answered('someone else', 60_000)
    expect(client.stats().hedgeDelay).toBe(60_000)
    // Only one provider is asked; its DHT copy answers for it.
    const record = await client.resolve('auto-slow', { timeout: 5_000 })
    expect(asked()).toBe(1)
    expect(all.map(p => p.peerId.toString())).toContain(record.peerId)
  })

  it('waits HEDGE_DELAY before the second provider while too few answers are known', async () => {
    await net.bootstrap()
    const fresh = await net.member()
    expect(fresh.stats().hedgeDelay).toBe(HEDGE_DELAY)
    for (let n = 0; n < 15; n++) fresh.reputation.answered('someone', 0.2)
    expect(fresh.stats().hedgeDelay).toBe(HEDGE_DELAY)
    fresh.reputation.answered('someone', 0.2)
    // Never below AUTO_HEDGE_MIN (a hedge on every request would be fan-out all at once).
    expect(fresh.stats().hedgeDelay).toBe(AUTO_HEDGE_MIN)
  })

  it('refuses a bad hedge', async () => {
    const registry = await net.bootstrap()
    for (const hedge of [-1, Infinity, Number.NaN]) {
      await expect(registry.resolve('x', { hedge })).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
    }
    for (const hedge of ['5', 'automatic']) {
      await expect(registry.resolve('x', { hedge: hedge as 'auto' })).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' })
    }
  })
})
