import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterEach, describe, expect, it } from 'vitest'
import {
  DEFAULT_DHT_PROTOCOL, RECORD_PROTOCOL, RecordRejection, SIGNING_DOMAIN, recordKey, signRecord, verifyRecord, verifyRecordForKey,
  type DhtService, type ServiceRecord, type ServiceRegistry
} from '../../src/discovery/index.js'
import { Network } from './network.js'

const net = new Network()
afterEach(async () => { await net.stop() })

const dhtOf = (r: ServiceRegistry): DhtService => (r.libp2p.services as any).dht
const drain = async (events: AsyncIterable<unknown>): Promise<void> => { for await (const _ of events); }
const rejectedTotal = (reason: string): number => net.registries.reduce((sum, r) => sum + (r.stats().rejected[reason] ?? 0), 0)

/** Signs an arbitrary payload the way records are signed (to build records signRecord() refuses). */
async function signRaw (payload: unknown, key: Awaited<ReturnType<typeof generateKeyPair>>): Promise<Uint8Array> {
  const body = Buffer.from(JSON.stringify(payload))
  const signature = await key.sign(Buffer.concat([Buffer.from(SIGNING_DOMAIN), body]))
  const out = Buffer.alloc(5 + body.length + signature.length)
  out[0] = 1
  out.writeUInt32BE(body.length, 1)
  body.copy(out, 5)
  out.set(signature, 5 + body.length)
  return out
}

function record (over: Partial<ServiceRecord> & { peerId: string }): ServiceRecord {
  return { name: 'svc', multiaddrs: [], metadata: null, sequence: 1, expiresAt: Date.now() + 60_000, ...over }
}

async function expectRejection (promise: Promise<unknown>, reason: string): Promise<void> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(RecordRejection)
  expect((error as RecordRejection).reason).toBe(reason)
}

describe('bad input', () => {
  it('the record checks refuse forged, expired, oversized, wrong-key and garbage records', async () => {
    const key = await generateKeyPair('Ed25519')
    const other = await generateKeyPair('Ed25519')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const me = peerIdFromPrivateKey(key).toString()
    const good = await signRecord(record({ peerId: me }), key)
    expect((await verifyRecordForKey(recordKey('svc', me), good)).peerId).toBe(me)
    await expectRejection(verifyRecord(await signRecord(record({ peerId: me }), other)), 'signature')
    await expectRejection(verifyRecord(await signRecord(record({ peerId: me, expiresAt: Date.now() - 1 }), key)), 'expired')
    await expectRejection(verifyRecord(await signRaw({ v: 1, name: 'svc', peer: me, addrs: [], meta: { json: 'x'.repeat(2000) }, seq: 1, exp: Date.now() + 1e5 }, key)), 'oversized')
    await expectRejection(verifyRecordForKey(recordKey('other', me), good), 'wrong-key')
    await expectRejection(verifyRecordForKey(recordKey('svc', peerIdFromPrivateKey(other)), good), 'wrong-key')
    await expectRejection(verifyRecord(new Uint8Array(9000)), 'oversized')
    for (const garbage of [new Uint8Array(0), new Uint8Array([1, 0, 0, 0, 200, 1]), Buffer.from('\x01\x00\x00\x00\x02{]sig'), new Uint8Array(100).fill(7)]) {
      await expectRejection(verifyRecord(garbage), 'malformed')
    }
    const tampered = Buffer.from(good)
    tampered[10] ^= 1
    await expect(verifyRecord(tampered)).rejects.toBeInstanceOf(RecordRejection)
  })

  it('DHT nodes refuse bad records put by a peer, count them, and keep serving good ones', async () => {
    await net.bootstrap()
    const [honest, attacker, client] = await net.members(3)
    await honest.advertise('svc', { metadata: 'real', ttl: 30_000 })
    const attackerKey = await generateKeyPair('Ed25519')
    const victim = honest.peerId.toString()
    const dht = dhtOf(attacker)
    // A record claiming to be the honest provider's, signed with another key, under its key.
    await drain(dht.put(recordKey('svc', victim), await signRecord(record({ peerId: victim, metadata: 'forged', sequence: Date.now() * 2 }), attackerKey), { signal: AbortSignal.timeout(3000) }))
    const own = (attacker.libp2p as any).components.privateKey
    const me = attacker.peerId.toString()
    await drain(dht.put(recordKey('svc', me), await signRecord(record({ peerId: me, expiresAt: Date.now() - 1000 }), own), { signal: AbortSignal.timeout(3000) }))
    await drain(dht.put(recordKey('svc', me), await signRaw({ v: 1, name: 'svc', peer: me, addrs: [], meta: { json: 'x'.repeat(4000) }, seq: 1, exp: Date.now() + 1e5 }, own), { signal: AbortSignal.timeout(3000) }))
    await drain(dht.put(recordKey('svc', me), await signRecord(record({ peerId: me, name: 'another-name' }), own), { signal: AbortSignal.timeout(3000) }))
    await drain(dht.put(recordKey('svc', me), new Uint8Array([1, 2, 3, 4, 5, 6, 7]), { signal: AbortSignal.timeout(3000) }))
    for (const reason of ['signature', 'expired', 'oversized', 'wrong-key', 'malformed']) expect(rejectedTotal(reason), reason).toBeGreaterThan(0)

    const found: ServiceRecord[] = []
    for await (const r of client.discover('svc', { timeout: 5000 })) found.push(r)
    expect(found.map(r => [r.peerId, r.metadata])).toEqual([[victim, 'real']])
  })

  it('a provider answering the record protocol with garbage or a forged record is skipped and counted', async () => {
    await net.bootstrap()
    const [liar, client] = await net.members(2)
    await liar.advertise('liar', { ttl: 30_000 })
    // Its DHT record goes stale at once (an expired copy replaces it locally); its direct answer is garbage.
    await liar.libp2p.unhandle(RECORD_PROTOCOL)
    let asked = 0
    await liar.libp2p.handle(RECORD_PROTOCOL, async stream => {
      asked++
      stream.send(asked % 2 === 0 ? new Uint8Array(64).fill(0xff) : await signRecord(record({ name: 'liar', peerId: liar.peerId.toString() }), await generateKeyPair('Ed25519')))
      await stream.close()
    })
    // The DHT copy is still valid, so it may win the race; either way nothing forged comes back
    // (the forged record carries metadata null, the real one none).
    const records: ServiceRecord[] = []
    for (let i = 0; i < 4; i++) {
      try { records.push(await client.resolve('liar', { fanOut: 1, timeout: 3000 })) } catch {}
    }
    for (const r of records) expect([r.peerId, r.metadata]).toEqual([liar.peerId.toString(), undefined])
    expect(asked).toBeGreaterThan(0)
    expect((client.stats().rejected.signature ?? 0) + (client.stats().rejected.malformed ?? 0)).toBeGreaterThan(0)
  })

  it('garbage bytes on the DHT protocol crash nothing; the node keeps answering', async () => {
    await net.bootstrap()
    const [target, provider, attacker] = await net.members(3)
    await provider.advertise('still-works', { ttl: 30_000 })
    const junk = [new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]), new Uint8Array(2000).fill(0xab), Buffer.from('\x05hello'), new Uint8Array([0x80])]
    for (const bytes of junk) {
      const stream = await attacker.libp2p.dialProtocol(target.peerId, DEFAULT_DHT_PROTOCOL)
      stream.send(bytes)
      // The node resets the stream (or answers nothing); either way only this stream is affected.
      await stream.close().catch(() => {})
      try { for await (const _ of stream); } catch {}
    }
    expect((await target.resolve('still-works', { timeout: 5000 })).peerId).toBe(provider.peerId.toString())
    expect((await attacker.resolve('still-works', { timeout: 5000 })).peerId).toBe(provider.peerId.toString())
  })
})
