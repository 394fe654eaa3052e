/**
 * A UDP relay between one client and a server on loopback that can change how the client's packets
 * reach the server: `rebind()` moves the relay's server-facing socket to a new port (a NAT
 * rebinding: every later packet comes from the new address), and `forward(share, from)` sends a
 * copy of that share of the client's packets from another address a moment ahead of the real one
 * (an attacker on the path racing the real packets, RFC 9000 §9.3.3). Replies to the copies reach
 * the attacker's socket and go no further.
 */
import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'

export interface PathRelay {
  /** Clients connect here. */
  port: number
  /** Moves the server-facing side to a new port; resolves with it. */
  rebind: () => Promise<number>
  /** From now on, copies `share` (0..1) of the client's packets from `from` ahead of the real ones, `leadMs` earlier. */
  forward: (share: number, from: string, leadMs?: number) => Promise<void>
  stats: { toServer: number, toClient: number, copies: number, repliesToCopies: number }
  close: () => void
}

async function bound (address: string): Promise<Socket> {
  const socket = createSocket('udp4')
  socket.on('error', () => {})
  socket.bind(0, address)
  await once(socket, 'listening')
  return socket
}

export async function pathRelay (serverPort: number, seed = 1): Promise<PathRelay> {
  let state = seed >>> 0
  const random = (): number => { // mulberry32, so a failure can be replayed
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const front = await bound('127.0.0.1')
  let back = await bound('127.0.0.1')
  let attacker: Socket | undefined
  let share = 0
  let lead = 2
  let client: { port: number, address: string } | undefined
  const stats = { toServer: 0, toClient: 0, copies: 0, repliesToCopies: 0 }
  // A delayed copy may come due after rebind() or close() closed its socket: it is dropped, as on a
  // real path whose NAT mapping is gone (dgram throws ERR_SOCKET_DGRAM_NOT_RUNNING synchronously).
  const delayed = new Set<NodeJS.Timeout>()
  const send = (socket: Socket, message: Buffer, port: number, address: string): void => {
    try { socket.send(message, port, address) } catch {}
  }
  const sendLater = (socket: Socket, message: Buffer): void => {
    const timer = setTimeout(() => {
      delayed.delete(timer)
      send(socket, message, serverPort, '127.0.0.1')
    }, lead)
    delayed.add(timer)
  }
  const fromServer = (message: Buffer): void => {
    if (client === undefined) return
    stats.toClient++
    send(front, message, client.port, client.address)
  }
  back.on('message', fromServer)
  front.on('message', (message, from) => {
    client = { port: from.port, address: from.address }
    stats.toServer++
    const real = back
    if (attacker !== undefined && random() < share) {
      stats.copies++
      send(attacker, message, serverPort, '127.0.0.1')
      sendLater(real, message)
      return
    }
    send(real, message, serverPort, '127.0.0.1')
  })
  return {
    port: front.address().port,
    stats,
    rebind: async () => {
      const old = back
      back = await bound('127.0.0.1')
      back.on('message', fromServer)
      // The old port dies with the "NAT" mapping: what arrives there now is lost.
      old.close()
      return back.address().port
    },
    forward: async (fraction, from, leadMs = 2) => {
      attacker ??= await bound(from)
      attacker.removeAllListeners('message')
      attacker.on('message', () => { stats.repliesToCopies++ })
      share = fraction
      lead = leadMs
    },
    close: () => {
      for (const timer of delayed) clearTimeout(timer)
      delayed.clear()
      front.close()
      back.close()
      attacker?.close()
    }
  }
}
