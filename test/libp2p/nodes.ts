/** js-libp2p nodes for the libp2p tests: our transport, identify, ping, and an echo protocol. */
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import type { Libp2p, PrivateKey, Stream, Transport } from '@libp2p/interface'
import { createLibp2p } from 'libp2p'
import { msquic, type MsQuicTransportOptions } from '../../src/libp2p/index.js'

export const ECHO = '/echo/1.0.0'

export type TestNode = Libp2p<{ identify: ReturnType<ReturnType<typeof identify>>, ping: ReturnType<ReturnType<typeof ping>> }>

export interface NodeOptions {
  listen?: string[]
  transport?: (components: any) => Transport
  options?: MsQuicTransportOptions
  privateKey?: PrivateKey
  /** Handler limits of the echo protocol. */
  maxInboundStreams?: number
  maxOutboundStreams?: number
  /** js-libp2p's connection manager and gater options. */
  connectionManager?: Record<string, unknown>
  connectionGater?: Record<string, unknown>
}

/** Echoes every stream back to its end. */
export async function echoHandler (stream: Stream): Promise<void> {
  for await (const chunk of stream) {
    if (!stream.send(chunk)) await stream.onDrain()
  }
  await stream.close()
}

export async function createNode (init: NodeOptions = {}): Promise<TestNode> {
  const node = await createLibp2p({
    privateKey: init.privateKey,
    addresses: { listen: init.listen ?? ['/ip4/127.0.0.1/udp/0/quic-v1'] },
    transports: [init.transport ?? msquic(init.options)],
    connectionMonitor: { enabled: false },
    ...(init.connectionManager === undefined ? {} : { connectionManager: init.connectionManager }),
    ...(init.connectionGater === undefined ? {} : { connectionGater: init.connectionGater }),
    services: { identify: identify(), ping: ping() }
  }) as unknown as TestNode
  await node.handle(ECHO, echoHandler, { maxInboundStreams: init.maxInboundStreams ?? 1024, maxOutboundStreams: init.maxOutboundStreams ?? 1024 })
  return node
}

/** Sends `data` on a new echo stream, closes the write side, and returns what came back. */
export async function echo (node: Libp2p, peer: Parameters<Libp2p['dialProtocol']>[0], data: Uint8Array): Promise<Uint8Array> {
  const stream = await node.dialProtocol(peer, ECHO, { maxOutboundStreams: 1024 } as any)
  const chunks: Uint8Array[] = []
  const done = (async () => { for await (const chunk of stream) chunks.push(chunk.subarray()) })()
  if (!stream.send(data)) await stream.onDrain()
  await stream.close()
  await done
  return Buffer.concat(chunks)
}

/** Runs `count` calls of `task` with at most `concurrency` at once. */
export async function pool (count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) await task(next++)
  }))
}
