import { afterEach, describe, expect, it } from 'vitest'
import { RECORD_PROTOCOL, type ServiceRegistry } from '../../src/discovery/index.js'
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

  it('without a hedge asks all fanOut providers at once', async () => {
    const { client, asked } = await providers('parallel', 3)
    await client.resolve('parallel', { fanOut: 3, timeout: 5_000 })
    expect(asked()).toBe(3)
  })

  it('refuses a bad hedge', async () => {
    const registry = await net.bootstrap()
    for (const hedge of [-1, Infinity, Number.NaN, '5']) {
      await expect(registry.resolve('x', { hedge: hedge as number })).rejects.toThrow(RangeError)
    }
  })
})
