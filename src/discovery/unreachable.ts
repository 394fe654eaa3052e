/**
 * Providers a connection to failed lately (see UNREACHABLE_HOLD): resolve(), discover(), dial() and
 * clients skip them until the hold ends or a connection to them opens again. A killed provider's
 * record stays valid until its TTL; without this, each later resolve or call would pay a failed
 * connection again (a timeout, when its host is gone). JS thread only.
 */
import type { Connection, PeerId } from '@libp2p/interface'
import { UNREACHABLE_HOLD } from './options.js'

/** Error codes and names that say a connection failed or is gone, not that a live peer refused something. */
const GONE = new Set([
  'ERR_QUIC_CLOSED', 'ERR_QUIC_IDLE_TIMEOUT', 'ERR_QUIC_TIMEOUT', 'ERR_QUIC_PEER_CLOSED', 'ERR_QUIC_UNREACHABLE',
  'ConnectionClosedError', 'ConnectionClosingError', 'ConnectionFailedError'
])

/**
 * Whether `error`, met on `connection` (undefined: while connecting), says the connection failed:
 * no connection came up, it is no longer open, or the error (or one of its causes) names a gone one.
 * (libp2p reports a connection as open for a while after the transport saw it close.)
 */
export function connectionFailed (connection: Connection | undefined, error: unknown): boolean {
  if (connection === undefined || connection.status !== 'open') return true
  for (let e = error as { code?: unknown, name?: unknown, cause?: unknown } | undefined, depth = 0; e != null && depth < 5; e = e.cause as typeof e, depth++) {
    if (GONE.has(String(e.code)) || GONE.has(String(e.name))) return true
  }
  return false
}

/** The peers a connection to failed lately, each until its hold ends. */
export class UnreachablePeers {
  readonly #until = new Map<string, number>()
  readonly #self: string
  readonly #hold: number

  constructor (self: PeerId, hold = UNREACHABLE_HOLD) {
    this.#self = self.toString()
    this.#hold = hold
  }

  /** Notes that a connection to `peer` failed (never this node itself). */
  mark (peer: PeerId | string): void {
    const id = peer.toString()
    if (id !== this.#self) this.#until.set(id, performance.now() + this.#hold)
  }

  /** Whether `peer` is held: a connection to it failed less than the hold ago, and none opened since. */
  has (peer: PeerId | string): boolean {
    const id = peer.toString()
    const until = this.#until.get(id)
    if (until === undefined) return false
    if (until > performance.now()) return true
    this.#until.delete(id)
    return false
  }

  /** A connection to `peer` opened: it is reachable again. */
  clear (peer: PeerId | string): void {
    this.#until.delete(peer.toString())
  }
}
