/**
 * `node-msquic libp2p`: two js-libp2p nodes on this transport in one process. They connect over
 * QUIC on loopback, identify each other, ping, and echo on new streams; peer ids, addresses and
 * timings are printed. js-libp2p itself (libp2p, @libp2p/identify, @libp2p/ping) must be installed.
 */
import type { Libp2p, Stream } from '@libp2p/interface'
import { msquic } from './index.js'

const ECHO = '/echo/1.0.0'

async function load (): Promise<{ createLibp2p: typeof import('libp2p').createLibp2p, identify: typeof import('@libp2p/identify').identify, ping: typeof import('@libp2p/ping').ping }> {
  try {
    const [{ createLibp2p }, { identify }, { ping }] = await Promise.all([import('libp2p'), import('@libp2p/identify'), import('@libp2p/ping')])
    return { createLibp2p, identify, ping }
  } catch (error) {
    throw new Error(`the libp2p demo needs js-libp2p: npm install libp2p @libp2p/identify @libp2p/ping (${(error as Error).message})`)
  }
}

async function echoHandler (stream: Stream): Promise<void> {
  for await (const chunk of stream) {
    if (!stream.send(chunk)) await stream.onDrain()
  }
  await stream.close()
}

async function echoOnce (node: Libp2p, peer: Libp2p['peerId'], data: Uint8Array): Promise<Buffer> {
  const stream = await node.dialProtocol(peer, ECHO)
  const chunks: Uint8Array[] = []
  const read = (async () => { for await (const chunk of stream) chunks.push(chunk.subarray()) })()
  if (!stream.send(data)) await stream.onDrain()
  await stream.close()
  await read
  return Buffer.concat(chunks)
}

const ms = (start: number): string => `${(performance.now() - start).toFixed(1)} ms`

export async function libp2pDemo (): Promise<void> {
  const { createLibp2p, identify, ping } = await load()
  const make = async (): Promise<Libp2p<{ ping: ReturnType<ReturnType<typeof ping>> }>> => {
    const node = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/udp/0/quic-v1'] },
      transports: [msquic()],
      services: { identify: identify(), ping: ping() }
    })
    await node.handle(ECHO, echoHandler, { maxInboundStreams: 256 })
    return node
  }
  let started = performance.now()
  const [a, b] = await Promise.all([make(), make()])
  console.log(`started two nodes in ${ms(started)}`)
  for (const [name, node] of [['A', a], ['B', b]] as const) {
    console.log(`node ${name}: ${node.peerId.toString()}`)
    for (const addr of node.getMultiaddrs()) console.log(`  listening on ${addr.toString()}`)
  }
  try {
    started = performance.now()
    const connection = await a.dial(b.getMultiaddrs()[0])
    console.log(`A dialed B in ${ms(started)}: ${connection.remoteAddr.toString()} (encryption ${connection.encryption}, muxer ${connection.multiplexer}, libp2p TLS checked in the handshake)`)
    started = performance.now()
    while (!(await a.peerStore.get(b.peerId)).protocols.includes(ECHO)) await new Promise(resolve => setTimeout(resolve, 5))
    const info = await a.peerStore.get(b.peerId)
    console.log(`A identified B in ${ms(started)}: ${info.protocols.length} protocols (${info.protocols.join(', ')})`)
    const rtts: number[] = []
    for (let i = 0; i < 5; i++) rtts.push(await a.services.ping.ping(b.peerId))
    console.log(`A pinged B 5 times: ${rtts.map(r => `${r} ms`).join(', ')}`)
    const message = Buffer.from('hello from A over libp2p on MsQuic')
    started = performance.now()
    const back = await echoOnce(a, b.peerId, message)
    if (!back.equals(message)) throw new Error('echo mismatch')
    console.log(`A echoed "${back.toString()}" through B in ${ms(started)}`)
    const count = 1000
    let next = 0
    started = performance.now()
    await Promise.all(Array.from({ length: 10 }, async () => {
      while (next < count) {
        const payload = Buffer.from(`stream ${next++}`)
        if (!(await echoOnce(a, b.peerId, payload)).equals(payload)) throw new Error('echo mismatch')
      }
    }))
    const seconds = (performance.now() - started) / 1000
    console.log(`A echoed ${count.toLocaleString('en-US')} streams through B, 10 at a time, in ${seconds.toFixed(2)} s (${Math.round(count / seconds).toLocaleString('en-US')} streams/s)`)
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
  console.log('libp2p demo done')
}
