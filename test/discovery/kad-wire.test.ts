/**
 * A registry answers kad-dht messages the way other Kademlia implementations send them: one request,
 * the write side closed at once (the FIN often in the same packet), then the answer read. Our libp2p
 * stream must end reading at that FIN, or kad-dht's handler reads again after answering, meets the
 * end of the stream and aborts, and the abort's reset discards the answer.
 */
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_DHT_PROTOCOL } from '../../src/discovery/index.js'
import { createNode, type TestNode } from '../libp2p/nodes.js'
import { Network } from './network.js'

const net = new Network()
const clients: TestNode[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map(async n => { await n.stop() }))
  await net.stop()
})

// kad-dht's Message (dht.proto): type = 1 (varint), key = 2 (bytes). PING 5, FIND_NODE 4, GET_PROVIDERS 3.
const MessageType = { GET_PROVIDERS: 3, FIND_NODE: 4, PING: 5 } as const

function varint (n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n >>>= 7 }
  out.push(n)
  return out
}

/** One length-prefixed kad message. */
function kadMessage (type: number, key: Uint8Array): Uint8Array {
  const body = [0x08, type, 0x12, ...varint(key.length), ...key]
  return Uint8Array.from([...varint(body.length), ...body])
}

/** The first length-prefixed message in `bytes`, or undefined when it is not whole. */
function firstMessage (bytes: Uint8Array): Uint8Array | undefined {
  let length = 0
  let shift = 0
  let i = 0
  for (; i < bytes.length; i++) {
    length |= (bytes[i] & 0x7f) << shift
    shift += 7
    if ((bytes[i] & 0x80) === 0) break
  }
  if (i >= bytes.length || bytes.length < i + 1 + length) return undefined
  return bytes.subarray(i + 1, i + 1 + length)
}

describe('kad-dht over our libp2p streams', () => {
  it('answers a request whose sender closes its write side at once, every time (30 runs, three message types)', async () => {
    const registry = await net.bootstrap()
    const client = await createNode()
    clients.push(client)
    // FIND_NODE takes any key; GET_PROVIDERS a CID's bytes (kad-dht decodes it); PING none.
    const keys = {
      [MessageType.FIND_NODE]: new TextEncoder().encode('/node-msquic/some-key'),
      [MessageType.GET_PROVIDERS]: CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode('echo'))).bytes,
      [MessageType.PING]: new Uint8Array(0)
    }
    let answered = 0
    for (let run = 0; run < 30; run++) {
      const type = [MessageType.FIND_NODE, MessageType.GET_PROVIDERS, MessageType.PING][run % 3]
      const key = keys[type]
      const stream = await client.dialProtocol(registry.multiaddrs[0], DEFAULT_DHT_PROTOCOL)
      stream.send(kadMessage(type, key))
      await stream.close()  // closes the write side; the answer still comes
      const chunks: Uint8Array[] = []
      for await (const chunk of stream) chunks.push(chunk.subarray())
      const answer = firstMessage(Buffer.concat(chunks))
      expect(answer, `run ${run}: no answer (${stream.status})`).toBeDefined()
      // The answer is a kad Message of the same type (field 1).
      expect(Array.from((answer as Uint8Array).subarray(0, 2))).toEqual([0x08, type])
      answered++
    }
    expect(answered).toBe(30)
  })
})
