import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'

export interface Impairment {
  /** Share of packets dropped, each way. */
  loss: number
  /** One-way delay in milliseconds, each way. */
  delayMs: number
  /** Share of packets held back a little longer, so that later ones overtake them. */
  reorder: number
  /** Seed for the pseudo-random choices, so a failure can be replayed. */
  seed: number
}

/**
 * A UDP relay on 127.0.0.1 that loses, delays and reorders packets between one client and a server:
 * a network path made in userspace, for kernels without netem. Clients connect to `port`.
 */
export async function lossyRelay (serverPort: number, impairment: Impairment): Promise<{ port: number, stats: { relayed: number, dropped: number, reordered: number }, close: () => void }> {
  let state = impairment.seed >>> 0
  // mulberry32: small and repeatable.
  const random = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const socket: Socket = createSocket('udp4')
  socket.bind(0, '127.0.0.1')
  await once(socket, 'listening')
  const stats = { relayed: 0, dropped: 0, reordered: 0 }
  let clientPort = 0
  let open = true
  socket.on('message', (message, from) => {
    const toServer = from.port !== serverPort
    if (toServer) clientPort = from.port
    if (random() < impairment.loss) {
      stats.dropped++
      return
    }
    let delay = impairment.delayMs
    if (random() < impairment.reorder) {
      delay += 1 + random() * impairment.delayMs
      stats.reordered++
    }
    stats.relayed++
    setTimeout(() => { if (open) socket.send(message, toServer ? serverPort : clientPort, '127.0.0.1') }, delay)
  })
  return { port: (socket.address()).port, stats, close: () => { open = false; socket.close() } }
}
