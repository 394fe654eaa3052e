/**
 * Hostile handshakes for the admission and flood tests: a real client Initial captured once and
 * replayed from many UDP sockets (each replay looks like a new client to the server), and clients
 * whose handshake never completes (their certificate check never answers).
 */
import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { connect, type QuicConnection } from '../src/index.js'

/** A client's first datagram (its Initial with the ClientHello), captured on a socket that never answers. */
export async function captureInitial (alpn: string, ca: string): Promise<Buffer> {
  const trap = createSocket('udp4')
  trap.bind(0, '127.0.0.1')
  await once(trap, 'listening')
  const controller = new AbortController()
  const attempt = connect({ host: '127.0.0.1', port: trap.address().port, alpn, ca, signal: controller.signal }).catch(() => {})
  const [datagram] = await once(trap, 'message') as [Buffer]
  controller.abort()
  await attempt
  trap.close()
  return datagram
}

/** What came back to the replaying sockets, by QUIC v1 long-header packet type. */
export interface ReplayReplies { retry: number, handshake: number, other: number }

/**
 * Sends `initial` to `port` once from each of `count` fresh sockets, `perTick` at a time with
 * `gapMs` between batches (MsQuic drops new Initials beyond 16 queued stateless replies per worker,
 * so an unpaced burst measures that queue, not the server's policy). Returns the replies so far.
 */
export async function replayInitial (port: number, initial: Buffer, count: number, perTick = 100, gapMs = 0): Promise<{ replies: ReplayReplies, close: () => void }> {
  const replies: ReplayReplies = { retry: 0, handshake: 0, other: 0 }
  const sockets: Socket[] = []
  const answered = new WeakSet<Socket>()
  for (let sent = 0; sent < count; sent += perTick) {
    const batch = Array.from({ length: Math.min(perTick, count - sent) }, () => createSocket('udp4'))
    for (const socket of batch) {
      socket.on('message', reply => {
        if (answered.has(socket)) return  // one classification per replay: its first reply
        answered.add(socket)
        // Long header (0x80); QUIC v1 packet type in bits 0x30: Initial 0, 0-RTT 1, Handshake 2, Retry 3.
        if ((reply[0] & 0x80) === 0) replies.other++
        else if ((reply[0] & 0x30) === 0x30) replies.retry++
        else replies.handshake++
      })
      socket.on('error', () => {})
      socket.bind(0, '127.0.0.1')
      sockets.push(socket)
    }
    await Promise.all(batch.map(async socket => await once(socket, 'listening')))
    for (const socket of batch) socket.send(initial, port, '127.0.0.1')
    await new Promise(resolve => gapMs > 0 ? setTimeout(resolve, gapMs) : setImmediate(resolve))
  }
  return { replies, close: () => { for (const socket of sockets) socket.close() } }
}

/** Clients whose handshake never completes: their certificate check never answers. */
export function stalledClients (port: number, alpn: string, count: number): { attempts: Array<Promise<QuicConnection | undefined>>, abort: () => void } {
  const controller = new AbortController()
  const attempts = Array.from({ length: count }, async () => await connect({
    host: '127.0.0.1',
    port,
    alpn,
    verifyPeer: async () => await new Promise<boolean>(() => {}),
    signal: controller.signal
  }).catch(() => undefined))
  return { attempts, abort: () => controller.abort() }
}
