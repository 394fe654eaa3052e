/**
 * The session tickets of the peers a transport dialled, for resumption: by address, each with the
 * peer id its first handshake verified. A resumed TLS 1.3 handshake carries no certificate, so the
 * peer id comes from here; only the server that issued a ticket can resume with it, and any other
 * makes it a full handshake, verified as usual. Bounded (least recently used out) and expiring (a
 * stale ticket costs a full handshake, nothing more). JS thread only.
 */
import type { PeerId } from '@libp2p/interface'
import type { QuicAddress } from './multiaddr.js'

/** Tickets kept per transport (one per address). */
export const SESSION_TICKETS_KEPT = 256
/** Milliseconds a ticket is used after it arrived. */
export const SESSION_TICKET_LIFETIME = 60 * 60_000

interface Entry { ticket: Buffer, peer: PeerId, expires: number }

export class SessionTickets {
  readonly #entries = new Map<string, Entry>()
  readonly #size: number
  readonly #lifetime: number
  readonly #now: () => number

  constructor ({ size = SESSION_TICKETS_KEPT, lifetime = SESSION_TICKET_LIFETIME, now = Date.now }: { size?: number, lifetime?: number, now?: () => number } = {}) {
    this.#size = size
    this.#lifetime = lifetime
    this.#now = now
  }

  /** The ticket for `address`, unless it is stale or was issued by another peer than the one dialled. */
  get (address: QuicAddress): { ticket: Buffer, peer: PeerId } | undefined {
    const key = keyOf(address)
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expires <= this.#now()) {
      this.#entries.delete(key)
      return undefined
    }
    if (address.peerId !== undefined && entry.peer.toString() !== address.peerId) return undefined
    // Most recently used last.
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    return entry
  }

  /** Keeps `ticket`, which `peer` (verified by the handshake, or by the one the ticket came from) issued at `address`. */
  set (address: QuicAddress, peer: PeerId, ticket: Buffer): void {
    const key = keyOf(address)
    this.#entries.delete(key)
    this.#entries.set(key, { ticket, peer, expires: this.#now() + this.#lifetime })
    if (this.#entries.size > this.#size) this.#entries.delete(this.#entries.keys().next().value as string)
  }

  get size (): number {
    return this.#entries.size
  }
}

function keyOf (address: QuicAddress): string {
  return `${address.family}/${address.host}/${address.port}`
}
