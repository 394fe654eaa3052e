/**
 * The transport's one admission model, after go-libp2p's resource manager (a connection charges the
 * transient scope until SetPeer moves it to its peer's): with `admission.transient`, every
 * connection of the transport, inbound and outbound, holds one Reservation of that manager, keyed
 * by its QuicConnection's id, from its admission (inbound, before the handshake) or the end of its
 * dial's handshake (outbound; the id exists from then) until it closes. Whoever learns the peer
 * promotes it: the transport once the upgrade succeeded, or, with `promoteOnUpgrade: false`, the
 * manager's owner (the DHT, when the peer enters its routing table) through
 * `transport.reservationOf(connection)`. The connection's close releases it on every path (refused
 * upgrade, aborted dial, a peer that vanished); after a promotion release() only reports the
 * outcome. JS thread.
 */
import { perAddressKey, type Reservation, type TransientConnectionManager } from '../limits/transient.js'

export class ConnectionReservations {
  /** The manager every reservation is taken from. */
  readonly manager: TransientConnectionManager<unknown>
  /** Whether the transport promotes a connection once its upgrade succeeded (else the manager's owner does). */
  readonly promoteOnUpgrade: boolean
  // The reservation of each open connection, promoted or not, by QuicConnection id.
  readonly #held = new Map<number, Reservation<unknown>>()

  constructor (manager: TransientConnectionManager<unknown>, promoteOnUpgrade = true) {
    this.manager = manager
    this.promoteOnUpgrade = promoteOnUpgrade
  }

  /**
   * Takes the reservation of connection `id` (remote IP `address`), or null when the manager
   * refuses; it is released once `closed` settles.
   */
  reserve (id: number, address: string, handshaking: boolean, closed: Promise<unknown>): Reservation<unknown> | null {
    const reservation = this.manager.tryReserve(id, { address: perAddressKey(address), handshaking })
    if (reservation === null) return null
    this.#held.set(id, reservation)
    const release = (): void => {
      reservation.release('closed')
      if (this.#held.get(id) === reservation) this.#held.delete(id)
    }
    void closed.then(release, release)
    return reservation
  }

  /** The reservation connection `id` holds until it closes, if any. */
  of (id: number): Reservation<unknown> | undefined {
    return this.#held.get(id)
  }

  /** Connection `id` finished its handshake: its reservation no longer protects one. */
  handshakeDone (id: number): void {
    this.#held.get(id)?.setHandshaking(false)
  }

  /** Connection `id` was upgraded to a connection with `peer`: promoted here unless its owner promotes. */
  upgraded (id: number, peer: string): void {
    if (this.promoteOnUpgrade) this.#held.get(id)?.promote(peer)
  }
}
